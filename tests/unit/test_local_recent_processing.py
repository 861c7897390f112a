"""A fair queue's recent processing time (local.fair_queues.RecentProcessing), kept as messages are deleted
and the window moves, is the sum a tenant's noisiness is judged by: each deleted message's processing,
receive to delete, counted for the part of it within the last RECENT_SECONDS."""

import random

import pytest

from hookrelay_cli.local.fair_queues import RECENT_SECONDS, RecentProcessing


def summed(processed: list[tuple[float, float]], now: float) -> float:
    window_start = now - RECENT_SECONDS
    return sum(min(took, ended - window_start) for ended, took in processed if ended >= window_start)


def test_a_processing_counts_the_part_of_it_within_the_window() -> None:
    recent = RecentProcessing()
    recent.add(ended=100.0, took=30.0)
    assert recent.total(now=100.0) == 30.0
    assert recent.total(now=100.0 + RECENT_SECONDS - 20.0) == pytest.approx(20.0)
    assert recent.total(now=100.0 + RECENT_SECONDS) == 0.0
    assert recent.total(now=100.0 + RECENT_SECONDS + 1.0) == 0.0
    assert not recent


@pytest.mark.parametrize("seed", range(20))
def test_it_is_the_sum_of_every_processing_over_the_window(seed: int) -> None:
    draw = random.Random(seed)
    recent, processed, now = RecentProcessing(), [], 1_000.0
    for _ in range(3_000):
        now += draw.expovariate(20.0) if draw.random() < 0.95 else draw.uniform(0, 2 * RECENT_SECONDS)
        if draw.random() < 0.7:
            took = draw.choice([draw.uniform(0, 0.05), draw.uniform(0, 5), draw.uniform(0, 3 * RECENT_SECONDS)])
            recent.add(now, took)
            processed.append((now, took))
        else:
            assert recent.total(now) == pytest.approx(summed(processed, now), abs=1e-6)
            assert bool(recent) == any(ended >= now - RECENT_SECONDS for ended, _ in processed)
