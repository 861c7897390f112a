"""`make help` lists every command of the Makefile, its descriptions in one column."""

import re
import subprocess

from paths import REPO


def test_make_help_lists_every_phony_command_aligned() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    phony = set(re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    commands = {name for name in phony if re.search(rf"^{re.escape(name)}:", makefile, re.MULTILINE)}
    # Helpers of other targets (an interpreter, a browser, the snippets' toolchains to install) are not
    # commands a user types.
    helpers = {"python313", "chromium", "receiver-toolchains"}

    lines = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, check=True
    )
    listed = {line.split()[1]: line for line in lines.stdout.splitlines()}

    assert set(listed) == commands - helpers
    description_columns = {len(line) - len(line.split(maxsplit=2)[2]) for line in listed.values()}
    assert len(description_columns) == 1, lines.stdout
