"""The benchmarks still run (at tiny sizes) and still meet their goals there."""

import subprocess
import sys

from paths import REPO


def test_ingest_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/ingest.py", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "matching: time per event" in result.stdout
    assert "fan-out:" in result.stdout
    assert "GOAL MISSED" not in result.stdout, result.stdout
