"""The benchmarks still run (at tiny sizes) and still meet their goals there."""

import subprocess
import sys

from paths import REPO


def run_smoke(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script, "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ingest_benchmark_smoke() -> None:
    result = run_smoke("benchmarks/ingest.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "matching: time per event" in result.stdout
    assert "fan-out:" in result.stdout
    assert "GOAL MISSED" not in result.stdout, result.stdout


def test_delivery_benchmark_smoke() -> None:
    # Only that it runs and prints its figures: one tiny sample says nothing about the goals.
    result = run_smoke("benchmarks/delivery.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "P1 batch of 10" in result.stdout and "P2 delivery path" in result.stdout
