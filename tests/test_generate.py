"""stream_generate / generate on a tiny random model, and on a scripted model for tool calls."""

import json
import shutil

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.sample_utils import make_logits_processors

import mlx_lfm2
from checkpoints import random_tokens
from mlx_lfm2 import PromptCache, SamplingSettings, ToolCall
from mlx_lfm2.generate import GenerationError, encode_prompt
from mlx_lfm2.sampling import FAMILY_DEFAULTS, SamplingError, family


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    model, tokenizer = mlx_lfm2.load(tiny_checkpoint[1])
    tokenizer.eos_token_ids = []  # random weights may write the EOS id at any step
    return model, tokenizer


def argmax_tokens(model, prompt, steps):
    cache = model.make_cache()
    logits = model(mx.array([prompt]), cache=cache)
    out = []
    for _ in range(steps):
        out.append(int(mx.argmax(logits[0, -1])))
        logits = model(mx.array([[out[-1]]]), cache=cache)
    return out


def test_greedy_is_argmax(loaded):
    model, tokenizer = loaded
    prompt = random_tokens(10, seed=3)
    result = mlx_lfm2.generate(model, tokenizer, prompt, max_tokens=12, temperature=0)
    assert result.tokens == argmax_tokens(model, prompt, 12)
    assert result.finish_reason == "length" and result.generation_tokens == 12


def test_stream_concatenates_to_generate(loaded):
    model, tokenizer = loaded
    messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
    streamed = list(mlx_lfm2.stream_generate(model, tokenizer, messages, max_tokens=16, temperature=0))
    whole = mlx_lfm2.generate(model, tokenizer, messages, max_tokens=16, temperature=0)
    assert "".join(r.text for r in streamed if r.kind == "text") == whole.text
    assert [r.token for r in streamed if r.token is not None][-1] == whole.tokens[-1]
    last = streamed[-1]
    assert last.finish_reason == "length" and last.prompt_tps > 0 and last.generation_tps > 0 and last.peak_memory > 0
    assert last.prompt_tokens == len(tokenizer.encode(mlx_lfm2.apply_chat_template(
        None, messages, add_generation_prompt=True, bos_token="<|startoftext|>"), add_special_tokens=False))
    assert all(r.logprobs.shape == (384,) for r in streamed)


def test_seed_reproduces_sampled_text(loaded):
    model, tokenizer = loaded
    run = lambda seed: mlx_lfm2.generate(  # noqa: E731
        model, tokenizer, "the weather", max_tokens=20, temperature=1.0, top_p=1.0, min_p=0.0, seed=seed
    ).tokens
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_stop_string_cuts_without_leaking(loaded):
    model, tokenizer = loaded
    prompt = random_tokens(8, seed=4)
    full = mlx_lfm2.generate(model, tokenizer, prompt, max_tokens=24, temperature=0).text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert len(stop) == 3
    result = mlx_lfm2.generate(model, tokenizer, prompt, max_tokens=24, temperature=0, stop=[stop])
    assert result.text == full[: full.index(stop)] and result.finish_reason == "stop"


def test_eos_token_stops_and_stays_out_of_the_text(loaded):
    model, tokenizer = loaded
    prompt = random_tokens(8, seed=5)
    greedy = argmax_tokens(model, prompt, 6)
    tokenizer.eos_token_ids = [greedy[3]]
    try:
        result = mlx_lfm2.generate(model, tokenizer, prompt, max_tokens=20, temperature=0)
    finally:
        tokenizer.eos_token_ids = []
    assert result.finish_reason == "stop"
    assert result.tokens == greedy[: greedy.index(greedy[3]) + 1]
    assert result.text == tokenizer.decode(result.tokens[:-1])


def test_split_multibyte_characters_never_stream_broken(loaded):
    _, tokenizer = loaded
    text = "中文字符 ✓ © ğ 🙂🙂"  # not in the tokenizer's corpus: split into byte tokens
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) > len(text)
    detokenizer = tokenizer.detokenizer
    detokenizer.reset()
    pieces = []
    for token in ids:
        detokenizer.add_token(token)
        pieces.append(detokenizer.last_segment)
    detokenizer.finalize()
    pieces.append(detokenizer.last_segment)
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)


@pytest.mark.parametrize("turns", [2, 3])
def test_prompt_cache_prefills_only_the_new_turn(loaded, turns):
    """Each turn continues from the tokens the model wrote (re-tokenizing an answer can give
    other tokens), so the fresh run to compare with is over exactly those prompt tokens."""
    model, tokenizer = loaded
    cache = PromptCache(model)
    messages = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"question number {turn} about the weather"})
        held = len(cache.tokens)
        prompt, _ = encode_prompt(tokenizer, messages, None, None, {}, cache)
        result = mlx_lfm2.generate(model, tokenizer, messages, max_tokens=8, temperature=0, prompt_cache=cache)
        fresh = mlx_lfm2.generate(model, tokenizer, prompt, max_tokens=8, temperature=0)
        assert result.tokens == fresh.tokens
        assert result.prompt_tokens == len(prompt) - held
        if turn:
            assert 0 < result.prompt_tokens < len(prompt) // 2  # only the new turn
            assert prompt[:held] == cache_tokens_before
        cache_tokens_before = list(cache.tokens)
        messages.append({"role": "assistant", "content": result.raw_text})


def test_prompt_cache_file_round_trip(loaded, tmp_path):
    model, tokenizer = loaded
    messages = [{"role": "user", "content": "hello"}]
    cache = PromptCache(model)
    first = mlx_lfm2.generate(model, tokenizer, messages, max_tokens=6, temperature=0, prompt_cache=cache)
    cache.save(tmp_path / "chat.safetensors")
    restored = PromptCache.load(model, tmp_path / "chat.safetensors")
    assert (restored.tokens, restored.text) == (cache.tokens, cache.text)
    messages += [{"role": "assistant", "content": first.raw_text}, {"role": "user", "content": "more"}]
    prompt, _ = encode_prompt(tokenizer, messages, None, None, {}, restored)
    a = mlx_lfm2.generate(model, tokenizer, messages, max_tokens=6, temperature=0, prompt_cache=restored)
    b = mlx_lfm2.generate(model, tokenizer, prompt, max_tokens=6, temperature=0)
    assert a.tokens == b.tokens and a.prompt_tokens < b.prompt_tokens


def test_context_length(loaded):
    model, tokenizer = loaded
    with pytest.raises(GenerationError, match="prompt of 2100 tokens does not fit the context length 2048"):
        mlx_lfm2.generate(model, tokenizer, random_tokens(2100), max_tokens=20)
    result = mlx_lfm2.generate(model, tokenizer, random_tokens(2040), max_tokens=50, temperature=0)
    assert result.generation_tokens == 8 and result.finish_reason == "length"


@pytest.mark.parametrize(
    "setting, message",
    [
        (dict(temperature=-0.1), "temperature is -0.1, expected >= 0"),
        (dict(top_p=1.5), "top_p is 1.5, expected in \\(0, 1\\]"),
        (dict(min_p=-1), "min_p is -1"),
        (dict(top_k=-3), "top_k is -3"),
        (dict(repetition_penalty=0), "repetition_penalty is 0"),
    ],
)
def test_bad_sampling_settings(loaded, setting, message):
    model, tokenizer = loaded
    with pytest.raises(SamplingError, match=message):
        mlx_lfm2.generate(model, tokenizer, "hi", max_tokens=2, **setting)


def sample_many(settings, probabilities, draws=400):
    logprobs = mx.log(mx.array([probabilities] * draws))
    mx.random.seed(0)
    return set(np.array(settings.sampler()(logprobs)).tolist())


def test_sampler_filters():
    probabilities = [0.5, 0.3, 0.15, 0.05]
    plain = SamplingSettings(temperature=1.0)
    assert sample_many(plain, probabilities) == {0, 1, 2, 3}
    assert sample_many(SamplingSettings(temperature=1.0, top_k=2), probabilities) == {0, 1}
    assert sample_many(SamplingSettings(temperature=1.0, top_p=0.7), probabilities) == {0, 1}
    assert sample_many(SamplingSettings(temperature=1.0, min_p=0.5), probabilities) == {0, 1}  # p >= 0.25
    assert sample_many(SamplingSettings(temperature=0.0), probabilities) == {0}


def test_repetition_penalty_as_specified():
    (processor,) = SamplingSettings(repetition_penalty=2.0, repetition_context_size=3).logits_processors()
    logits = mx.array([[1.0, -1.0, 2.0, 4.0, 0.5]])
    out = np.array(processor(mx.array([3, 0, 1, 2]), logits))[0]  # context: the last 3 tokens 0, 1, 2
    np.testing.assert_allclose(out, [0.5, -2.0, 1.0, 4.0, 0.5])
    assert SamplingSettings(repetition_penalty=1.0).logits_processors() == []
    assert make_logits_processors  # mlx-lm's own processor is what runs


def test_defaults_per_family_and_generation_config(tiny_checkpoint, tmp_path):
    assert family("LiquidAI/LFM2-1.2B") == "lfm2"
    assert family("LiquidAI/LFM2.5-1.2B-Instruct") == "lfm2.5"
    assert family("LiquidAI/LFM2-350M-Math") == "lfm2-math"
    assert FAMILY_DEFAULTS["lfm2"] == SamplingSettings(temperature=0.3, min_p=0.15, repetition_penalty=1.05)
    assert FAMILY_DEFAULTS["lfm2.5"] == SamplingSettings(temperature=0.1, top_k=50, top_p=0.1, repetition_penalty=1.05)
    assert FAMILY_DEFAULTS["lfm2-math"] == SamplingSettings(temperature=0.6, top_p=0.95, min_p=0.1, repetition_penalty=1.05)
    model, _ = mlx_lfm2.load(tiny_checkpoint[1])
    assert model.generation_defaults == FAMILY_DEFAULTS["lfm2"]
    folder = shutil.copytree(tiny_checkpoint[1], tmp_path / "LFM2.5-tiny")
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**config, "temperature": 0.7, "top_k": 20}))
    model, _ = mlx_lfm2.load(folder)
    assert model.generation_defaults == SamplingSettings(temperature=0.7, top_k=20, top_p=0.1, repetition_penalty=1.05)


class ScriptedModel:
    """Writes a fixed answer per prefill, token by token: lets tests drive the generation loop
    through tool calls without trained weights."""

    def __init__(self, tokenizer, answers, vocab=384):
        self.answers = [tokenizer.encode(a, add_special_tokens=False) + [7] for a in answers]
        self.config = type("Config", (), {"max_position_embeddings": 4096})()
        self.prompts, self.vocab, self._queue = [], vocab, []

    def make_cache(self):
        return []

    def __call__(self, inputs, cache=None):
        if inputs.shape[1] > 1:  # a new prefill (all but its last token): the next answer
            self.prompts.append(inputs[0].tolist())
            self._queue = list(self.answers[len(self.prompts) - 1])
            token = 0
        else:
            token = self._queue.pop(0) if self._queue else 7
        return mx.where(mx.arange(self.vocab) == token, 10.0, -10.0)[None, None].astype(mx.float32)


def get_weather(city: str) -> dict:
    """Current weather.

    Args:
        city: The city.
    """
    return {"city": city, "temperature": -3}


def test_tool_round_trip(loaded):
    _, tokenizer = loaded
    tokenizer.eos_token_ids = [7]
    try:
        model = ScriptedModel(tokenizer, [
            'Checking.<|tool_call_start|>[get_weather(city="Oslo")]<|tool_call_end|>',
            "It is -3 in Oslo.",
        ])
        messages = [{"role": "user", "content": "Weather in Oslo?"}]
        streamed = list(mlx_lfm2.stream_generate(model, tokenizer, messages, tools=[get_weather], temperature=0))
        assert "".join(r.text for r in streamed if r.kind == "text") == "Checking."
        assert [c for r in streamed for c in r.tool_calls] == [ToolCall("get_weather", {"city": "Oslo"})]
        assert streamed[-1].finish_reason == "tool_calls"

        model = ScriptedModel(tokenizer, [
            'Checking.<|tool_call_start|>[get_weather(city="Oslo")]<|tool_call_end|>',
            "It is -3 in Oslo.",
        ])
        result, conversation = mlx_lfm2.generate_with_tools(model, tokenizer, messages, [get_weather], temperature=0)
    finally:
        tokenizer.eos_token_ids = []
    assert result.text == "It is -3 in Oslo." and result.finish_reason == "stop"
    assert [m["role"] for m in conversation] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(conversation[2]["content"]) == {"city": "Oslo", "temperature": -3}
    second_prompt = tokenizer.decode(model.prompts[1])
    assert "<|tool_response_start|>" in second_prompt and '"get_weather"' in second_prompt
