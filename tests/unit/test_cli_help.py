"""Every command and subcommand of `hookrelay` explains itself with --help."""

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hookrelay_cli.main import build_parser, main
from paths import REPO


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _subcommands(subparser, (*path, name))


COMMANDS = list(_subcommands(build_parser()))


def test_the_operator_commands_are_all_there() -> None:
    assert {" ".join(path) for path in COMMANDS} >= {
        "keys create",
        "keys list",
        "keys revoke",
        "dlq list",
        "dlq show",
        "dlq redrive",
        "deliveries list",
        "deliveries show",
        "deliveries retry",
        "local up",
        "local invoke",
    }


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "hookrelay")
def test_help_exits_0_with_a_description(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hookrelay")
    # A description under the usage line, not only the argument list.
    assert out.split("\n\n")[1].strip() and not out.split("\n\n")[1].startswith(("options:", "positional"))


def test_the_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookrelay_cli.main", "--help"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "dlq" in result.stdout and "deliveries" in result.stdout
