"""The one shape of a benchmark result, so `benchmarks/run.py` can gather every script's into BENCHMARKS.md.

Each benchmark script prints its figures as it goes and, given `--figures FILE`, also writes them
there as JSON (a list of Figure fields).
"""

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    goal: str  # "P1" ... "P7"
    what: str  # what was measured, in words
    measured: str  # the figure, with its unit
    baseline: str  # what it is compared against, measured in the same run ("" when the goal is absolute)
    result: str  # the ratio or count the goal is about
    target: str  # the goal, e.g. "<= 1.3x"
    met: bool

    def line(self) -> str:
        against = f" vs {self.baseline}" if self.baseline else ""
        verdict = "met" if self.met else "GOAL MISSED"
        return f"{self.goal} {self.what}: {self.measured}{against} = {self.result} (goal {self.target}) {verdict}"


def arguments(description: str | None) -> argparse.ArgumentParser:
    """The options every benchmark script takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script still works")
    parser.add_argument("--figures", type=Path, help="also write the figures to this JSON file")
    return parser


def report(figures: list[Figure], path: Path | None) -> None:
    for figure in figures:
        print(figure.line(), flush=True)
    if path:
        path.write_text(json.dumps([asdict(figure) for figure in figures], indent=2), encoding="utf-8")
