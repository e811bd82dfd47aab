import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
sys.path.insert(0, str(Path(__file__).parent.parent / "examples" / "demo_model"))

import checkpoints  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(HF reference model, its saved folder) for the tiny dense config."""
    model = checkpoints.hf_model(checkpoints.TINY)
    return model, checkpoints.save_checkpoint(model, tmp_path_factory.mktemp("tiny"))
