"""The mlx_lfm2.convert command (typer's CliRunner, and the installed entry points)."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from checkpoints import TINY, hf_model, save_checkpoint
from mlx_lfm2.convert.cli import app

runner = CliRunner()
OPTIONS = ["--hf-path", "--mlx-path", "--quantize", "--q-bits", "--q-group-size", "--dtype",
           "--quant-predicate", "--dequantize", "--upload-repo", "--force", "--revision", "--max-shard-gb", "--quiet", "--debug"]


def test_help_lists_every_option_with_a_description():
    from test_cli import test_help_lists_every_option_with_a_description as check_help

    check_help(app, OPTIONS)


def test_convert_quantize_and_report(tmp_path):
    source = save_checkpoint(hf_model(TINY), tmp_path / "source")
    out = tmp_path / "out"
    result = runner.invoke(app, ["--hf-path", str(source), "--mlx-path", str(out), "-q", "--q-bits", "8", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "8-bit, group size 64" in result.output and "bits per weight" in result.output
    assert f"mlx_lfm2.generate --model {out}" in result.output
    again = runner.invoke(app, ["--hf-path", str(source), "--mlx-path", str(out)])
    assert again.exit_code == 1
    assert again.output.strip().splitlines() == [f"error: {out}: already exists; pass --force to replace it"]


def test_bad_value_is_one_line(tmp_path):
    result = runner.invoke(app, ["--hf-path", str(tmp_path), "-q", "--q-bits", "7"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --q-bits is 7, expected one of 2, 3, 4, 5, 6, 8"


def test_missing_source_is_one_line(tmp_path):
    result = runner.invoke(app, ["--hf-path", str(tmp_path / "nope"), "--mlx-path", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {tmp_path / 'nope'}: no such folder"


def test_module_and_console_script_run():
    script = str(Path(sys.executable).parent / "mlx_lfm2.convert")
    for command in ([sys.executable, "-m", "mlx_lfm2.convert", "--help"], [script, "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--hf-path" in done.stdout
