"""A refusal of hookrelay's logic reaches the operator as one line and an exit code, not a traceback."""

import argparse

import pytest

from hookrelay.errors import NotFound, Unavailable
from hookrelay_cli import main as cli


@pytest.mark.parametrize(
    ("error", "exit_code", "line"),
    [
        (NotFound("Portal session"), 1, "error: Portal session not found\n"),
        (
            Unavailable("DynamoDB kept refusing the write"),
            cli.EXIT_TRY_AGAIN,
            "error: hookrelay could not complete the request now: DynamoDB kept refusing the write."
            " Send it again in 1 s.\n",
        ),
    ],
)
def test_a_refusal_is_one_line_and_an_exit_code(
    error: Exception, exit_code: int, line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(arguments: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr(cli, "_keys_list", refused)
    assert cli.main(["keys", "list", "--team", "acme", "--local"]) == exit_code
    assert capsys.readouterr().err == line
