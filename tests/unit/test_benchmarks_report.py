"""BENCHMARKS.md says how each goal is measured in the words of benchmarks/run.py, which writes it at
`make bench`: a hand-edited report between runs must not drift from what the scripts do."""

import sys

from paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from run import METHODS


def test_benchmarks_md_describes_each_goal_as_run_py_writes_it() -> None:
    report = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines()
    described = [line for line in report if line.startswith("- **P")]
    assert described == [f"- **{goal}** {text}" for goal, text in METHODS.items()]
