"""The command line as a whole: every command listed with an example, the version, usage exit codes."""
from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from cyclegan_convert.cli import app

COMMANDS = ("train", "export", "convert", "video", "pull", "import", "models")
runner = CliRunner()


def test_help_lists_every_command_with_an_example():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(line.strip("│ ") for line in result.output.splitlines())
    starts = sorted((text.index(f" {name}  "), name) for name in COMMANDS)  # each command's entry
    for (at, name), (end, _) in zip(starts, starts[1:] + [(len(text), "")]):
        assert "Example: ccv " in text[at:end], name


def test_version_comes_from_package_metadata():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"ccv {version('cyclegan-convert')}"


def test_unknown_command_and_option_are_usage_errors():
    assert runner.invoke(app, ["paint"]).exit_code == 2
    assert runner.invoke(app, ["convert", "x.jpg", "--no-such-option"]).exit_code == 2
