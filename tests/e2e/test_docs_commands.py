"""The README's first webhook and the quick start page, run as a reader runs them: their shell blocks, in
order, in one bash session at the repository's root, against `hookrelay local up` (what `make run` runs).

The reader fills in one block by hand, the assignments of API, KEY and RECEIVER_PORT: the test gives them
this stack's address, the development key it printed and a free port. Every other command runs as written,
and what it printed must match the ```text block after it, where `...` stands for anything."""

import contextlib
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from e2e.conftest import DEV_KEY_BANNER, SECRETS, RunningStack, running_stack
from paths import REPO

pytestmark = pytest.mark.e2e

README = REPO / "README.md"
QUICK_START = REPO / "docs" / "quickstart.md"
FENCED = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
INCLUDED = re.compile(r'^--8<-- "README\.md:([\w-]+)"$', re.MULTILINE)
# What the reader fills in, and the address and port the docs' examples use for them.
FILLED_IN = ("API", "KEY", "RECEIVER_PORT")
DOCS_API, DOCS_AWS, DOCS_RECEIVER = "http://127.0.0.1:3000", "http://127.0.0.1:3001", "127.0.0.1:8000"
MARKER = "@@ end of block @@"
RUN_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Block:
    command: str
    expected: str  # the ```text block that follows it, or ""


def readme_section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"--8<-- \[start:{name}\] -->\n(.*?)^<!-- --8<-- \[end:{name}\]", text, re.DOTALL | re.M)
    assert found, f"README.md has no section {name} (<!-- --8<-- [start:{name}] --> ... [end:{name}])"
    return found.group(1)


def blocks(markdown: str) -> list[Block]:
    """The shell blocks of a page, each with the text block that follows it."""
    fenced = [(match.group(1), match.group(2)) for match in FENCED.finditer(markdown)]
    listed = []
    for index, (language, code) in enumerate(fenced):
        if language == "sh":
            following = fenced[index + 1] if index + 1 < len(fenced) else ("", "")
            listed.append(Block(code, following[1] if following[0] == "text" else ""))
    return listed


def first_webhook() -> list[Block]:
    return blocks(readme_section("first-webhook"))


def quick_start() -> list[Block]:
    page = QUICK_START.read_text(encoding="utf-8")
    return blocks(INCLUDED.sub(lambda included: readme_section(included.group(1)), page))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def for_this_stack(text: str, stack: RunningStack, receiver_port: int) -> str:
    """The docs' addresses (make run's ports, the receiver's 8000) as this stack and receiver have them."""
    return (
        text.replace(DOCS_API, stack.url)
        .replace(DOCS_AWS, stack.aws_endpoint)
        .replace(DOCS_RECEIVER, f"127.0.0.1:{receiver_port}")
    )


def filled_in(block: Block, stack: RunningStack, receiver_port: int) -> str:
    assignments = dict(line.split("=", 1) for line in block.command.splitlines())
    assert tuple(assignments) == FILLED_IN, f"the block the reader fills in sets {tuple(assignments)}"
    assert assignments["API"] == DOCS_API
    key = DEV_KEY_BANNER.search(stack.text())
    assert key, "the stack printed no development key"
    return f"API={stack.url}\nKEY={key.group(1)}\nRECEIVER_PORT={receiver_port}\n"


def unmatched(expected: str, printed: str) -> list[str]:
    """The lines of `expected` that no line of `printed` matches (`...` matching anything)."""
    lines = [line.rstrip() for line in printed.splitlines()]
    patterns = [re.escape(line.rstrip()).replace(re.escape("..."), ".*") for line in expected.splitlines()]
    return [pattern for pattern in patterns if not any(re.fullmatch(pattern, line) for line in lines)]


def run(commands: list[str]) -> list[str]:
    """Run the blocks in one bash session; what each printed (stdout and stderr)."""
    script = "set -euo pipefail\n" + "".join(f"{command}\necho '{MARKER}'\n" for command in commands)
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that a receiver still waiting is ended with the session
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):  # a receiver left waiting by a failed block
            os.killpg(process.pid, signal.SIGKILL)
    printed = output.split(MARKER + "\n")
    assert process.returncode == 0 and len(printed) == len(commands) + 1, (
        f"bash stopped (exit {process.returncode}) in block {len(printed)}:\n{output}"
    )
    for line in output.splitlines():
        if line.startswith("{"):
            SECRETS.add_from_json(line.encode())  # the session's secrets hygiene check looks for them
    return printed[:-1]


# `make run`'s stack is `hookrelay local up` with its own defaults: none of the e2e stacks' extra strictness
# (random transaction conflicts, lagging indexes), which the pages' readers do not have either.
MAKE_RUN_DEFAULTS = {"HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE": "0", "HOOKRELAY_LOCAL_INDEX_LAG_MS": "0"}


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack(MAKE_RUN_DEFAULTS) as started:
        yield started


def run_as_written(listed: list[Block], stack: RunningStack) -> None:
    receiver_port = free_port()
    commands = [
        filled_in(block, stack, receiver_port) if block.command.startswith("API=") else block.command
        for block in listed
    ]
    for block, printed in zip(listed, run(commands), strict=True):
        expected = for_this_stack(block.expected, stack, receiver_port)
        assert unmatched(expected, printed) == [], f"{block.command}\nprinted:\n{printed}\nthe stack:\n{stack.tail()}"


def printed_while_a_receiver_may_print(block: Block) -> list[str]:
    """The commands that print straight to the terminal between a receiver started in the background and
    the `wait` for it: curl writes an answer and its newline apart, so the receiver's lines can land
    between them, breaking both (the reader's terminal and this module's line matching)."""
    printing, receiving = [], False
    for line in block.command.splitlines():
        if line.rstrip().endswith("&"):
            receiving = True
        elif line.startswith("wait"):
            receiving = False
        elif receiving and line.startswith("curl "):
            printing.append(line)
    return printing


def test_no_answer_is_printed_while_a_receiver_prints() -> None:
    for block in quick_start():
        assert printed_while_a_receiver_may_print(block) == [], block.command


def test_the_readme_s_first_webhook_reaches_a_receiver_that_verifies_it(stack: RunningStack) -> None:
    listed = first_webhook()
    assert [block.command.split("=")[0] for block in listed[:1]] == ["API"]
    assert "verified signer.done" in listed[-1].expected
    run_as_written(listed, stack)


def test_the_quick_start_runs_as_written(stack: RunningStack) -> None:
    listed = quick_start()
    # `make run` is this module's stack: it printed what the page says it prints.
    assert listed[0].command.strip() == "make run"
    assert unmatched(for_this_stack(listed[0].expected, stack, 0), stack.text()) == []
    assert len(listed) > len(first_webhook()) + 1
    run_as_written(listed[1:], stack)
