"""The benchmarks still run (at tiny sizes) and still meet their goals there."""

import os
import re
import subprocess
import sys

from paths import REPO

# What the test session sets for the handlers it runs (region, powertools, hookrelay settings): a user's
# shell running `make bench` has none of it, and a script must not need it.
SESSION_ONLY = ("AWS_", "POWERTOOLS_", "HOOKRELAY_")


def run_smoke(script: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script, "--smoke", *arguments],
        cwd=REPO,
        env={name: value for name, value in os.environ.items() if not name.startswith(SESSION_ONLY)},
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
    assert "P1 one SQS batch of 10" in result.stdout and "P2 delivery path" in result.stdout


def test_aws_calls_benchmark_smoke() -> None:
    # 10 events at 1, 3 and 10 subscriptions: the per-delivery call counts are exact at any size.
    result = run_smoke("benchmarks/aws_calls.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "P3 DynamoDB writes per delivery attempt: 30 writes for 30 attempts = 1.00 (goal <= 1) met" in result.stdout
    assert "P3 subscription queries per delivery, warm container: 0 reads" in result.stdout
    for fan_out in (1, 3, 10):
        assert f"P3 modeled cost per million deliveries, {fan_out} subscriptions per event" in result.stdout
    assert result.stdout.count("DynamoDB provisioned write: ") == 1, "every unit price is printed once"


def test_end_to_end_benchmark_smoke() -> None:
    # The local stack in its own process, 20 events x 3 subscriptions: every delivery must arrive.
    result = run_smoke("benchmarks/end_to_end.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "P6 end to end, 20 events x 3 subscriptions: events accepted by the API" in result.stdout
    assert "deliveries/s" in result.stdout
    assert "delivered 60/60" in result.stdout
    assert "GOAL MISSED" not in result.stdout, result.stdout


def test_cold_start_benchmark_smoke() -> None:
    # A P5 line per handler (each first invocation did its work against moto, or the script fails);
    # two runs say nothing about the goals, so they are not checked.
    result = run_smoke("benchmarks/cold_start.py")
    assert result.returncode == 0, result.stderr[-3000:]
    for handler in ("api", "authorizer", "ingest", "delivery", "sweeper"):
        assert f"P5 cold start of the {handler} handler (import + first invocation): " in result.stdout, result.stdout


def test_rate_limits_benchmark_smoke() -> None:
    result = run_smoke("benchmarks/rate_limits.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "P3 rate_limit 1, 300 events at once: DynamoDB writes per delivery for its rate limit" in result.stdout
    assert result.stdout.count("P3 most writes the rate# key takes in a second") == 3
    assert "GOAL MISSED" not in result.stdout, result.stdout


def test_flood_benchmark_smoke() -> None:
    # Three runs (four local stacks: the last floods a second one), 3 s of flood: every event of the other team
    # arrives, and no flooding request gets a 5xx (the latency ratios of so short a run say nothing, so they
    # are not checked).
    result = run_smoke("benchmarks/flood.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    every_event = r"[\d.]+ s, 5/5 delivered vs without the flood [\d.]+ s, 5/5 delivered"
    assert re.search(every_event, result.stdout), result.stdout
    beside = r"vs the flood on another stack [\d.]+ s \([\d.]+x without the flood\), 5/5 delivered"
    assert re.search(beside, result.stdout), result.stdout
    assert "P8 (flood) the flooding team's PATCHes" in result.stdout and "= 0 5xx" in result.stdout, result.stdout
    assert result.stdout.count("= 0 5xx (goal") == 2, result.stdout


def test_noisy_neighbour_benchmark_smoke() -> None:
    # One scenario (four local stacks: B's with A, B's and A's apart, the host's floor): all of B's events
    # arrive in every phase, beside A's stack too (the ratios of so small a run say nothing, so they are not
    # checked).
    result = run_smoke("benchmarks/noisy_neighbour.py", "--scenarios", "slow")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "B delivered 10/10 alone, 10/10 with A, 10/10 beside A's stack" in result.stdout, result.stdout
    assert "with A's backlog on a stack of its own" in result.stdout, result.stdout
