"""A byte-level BPE tokenizer with LFM2's special tokens at LFM2's ids, trained on any text."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

# LFM2's tokenizer numbers these 0..13 in this order; templates and parsers rely on the names.
SPECIAL_TOKENS = [
    "<|pad|>",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|fim_pre|>",
    "<|fim_mid|>",
    "<|fim_suf|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|tool_list_start|>",
    "<|tool_list_end|>",
    "<|tool_call_start|>",
    "<|tool_call_end|>",
    "<|tool_response_start|>",
    "<|tool_response_end|>",
]

# Words, single digits, spaces and punctuation runs become separate pieces, so a word is the
# same tokens after a space as after a quote: copying a name from a question into a tool call
# is then a plain copy. (GPT-2's rule glues the space to the word that follows it.)
WORD_PIECES = r"[^\W\d_]+|\d|\s+|[^\w\s]+|_"


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    folder: Path,
    *,
    word_pieces: bool = False,
    chat_template: str | None = None,
) -> None:
    """Trains the BPE on `texts` and saves it in transformers' format into `folder`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    if word_pieces:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(WORD_PIECES), "isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    for index, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == index, token
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|startoftext|>", eos_token="<|im_end|>", pad_token="<|pad|>"
    )
    if chat_template is not None:
        wrapped.chat_template = chat_template
    wrapped.save_pretrained(folder)
