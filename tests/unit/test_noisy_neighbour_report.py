"""P8 noisy neighbour's verdict (benchmarks/noisy_neighbour.py), from made-up timings: no stack started."""

import sys

from paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from noisy_neighbour import SCENARIOS, Arrivals, BesideAStack, Outcome, latencies, p95

from hookrelay.records import delivery_id

# B timed on a stack of its own, alone and while A's backlog is on another stack of the machine.
BESIDE_A_STACK = BesideAStack(alone=[0.5] * 100, b=[1.2] * 100, a_backlog_at_b_end=400)


def outcome(
    b_alone: list[float],
    b_with_a: list[float],
    a_backlog_at_b_end: int = 500,
    beside: BesideAStack = BESIDE_A_STACK,
) -> Outcome:
    return Outcome(
        scenario=SCENARIOS["slow"],
        a_events=600,
        b_events=100,
        b_alone=b_alone,
        b_with_a=b_with_a,
        beside_a_stack=beside,
        a_requests_per_second_alone=19.5,
        a_requests_per_second_during_b=12.25,
        a_backlog_at_b_end=a_backlog_at_b_end,
        machine="CPUs 90 % busy",
        b_to_fan_out=[0.5] * 100,
        b_fan_out_to_send=[0.25] * 100,
        queues_at_b_start={"events": 0, "delivery": 10, "slow lane": 1500},
    )


def test_p95_is_the_nearest_rank() -> None:
    assert p95([float(i) for i in range(100, 0, -1)]) == 95.0
    assert p95([float(i) for i in range(1, 21)]) == 19.0
    assert p95([3.0]) == 3.0


def test_b_within_twice_its_latency_alone_meets_the_goal_and_the_outliers_beyond_p95_do_not_count() -> None:
    result = outcome([1.0] * 100, [1.5] * 95 + [30.0] * 5)
    latency, sharing, throughput, stages, _ = result.figures()
    assert latency.line() == (
        "P8 noisy neighbour A's endpoint answers after 2 s, A = 600 events: B's p95 publish to receipt while A's "
        "backlog exists: 1.50 s vs 1.00 s with A absent = 1.50x (goal <= 2x) met"
    )
    assert sharing.line() == (
        "P8 noisy neighbour A's endpoint answers after 2 s, A = 600 events: B's p95 with A's backlog on B's stack, "
        "against A's backlog on a stack of its own on this machine (what sharing hookrelay's queues, functions "
        "and table costs B beyond sharing the CPUs): 1.50 s vs 1.20 s with A's backlog on a stack of its own "
        "(2.40x B alone there, 0.50 s; A's backlog then 400) = 1.25x (goal <= 2x) met"
    )
    assert throughput.met
    assert "19.5/s alone, 12.2/s while B publishes" in throughput.measured
    assert "A's backlog when B's last arrived: 500" in throughput.result
    assert "100/100 alone, 100/100 with A, 100/100 beside A's stack" in throughput.result
    assert stages.line() == (
        "P8 noisy neighbour A's endpoint answers after 2 s, A = 600 events: where B's p95 went while A's backlog "
        "exists: publish to fan-out p95 0.50 s vs fan-out to first send p95 0.25 s = queued when B started: "
        "events 0, delivery 10, slow lane 1500 (goal (reported)) met"
    )


def test_b_slowed_beyond_twice_misses_the_goal() -> None:
    latency, *_ = outcome([1.0] * 100, [2.5] * 100).figures()
    assert (latency.result, latency.met) == ("2.50x", False)
    assert latency.line().endswith("GOAL MISSED")


def test_b_slowed_by_the_machine_alone_misses_the_goal_but_not_the_design_s_share() -> None:
    # A's backlog on another stack of the machine slows B as much as A's on B's own stack.
    beside = BesideAStack(alone=[1.0] * 100, b=[2.4] * 100, a_backlog_at_b_end=400)
    latency, sharing, *_ = outcome([1.0] * 100, [3.0] * 100, beside=beside).figures()
    assert (latency.result, latency.met) == ("3.00x", False)
    assert (sharing.result, sharing.met) == ("1.25x", True)


def test_b_slowed_by_sharing_the_stack_misses_the_design_s_share() -> None:
    beside = BesideAStack(alone=[1.0] * 100, b=[1.1] * 100, a_backlog_at_b_end=400)
    _, sharing, *_ = outcome([1.0] * 100, [2.5] * 100, beside=beside).figures()
    assert (sharing.result, sharing.met) == ("2.27x", False)


def test_a_run_where_a_drained_before_b_ended_or_b_lost_events_proves_nothing() -> None:
    drained = outcome([1.0] * 100, [1.0] * 100, a_backlog_at_b_end=0).figures()
    assert [figure.met for figure in drained[:3]] == [False, False, False]
    lost = outcome([1.0] * 100, [1.0] * 99)
    assert not lost.all_of_b_delivered
    assert [figure.met for figure in lost.figures()[:3]] == [False, False, False]


def test_a_run_where_a_s_own_stack_drained_early_or_b_lost_events_beside_it_proves_nothing() -> None:
    drained_beside = BesideAStack(alone=[1.0] * 100, b=[1.0] * 100, a_backlog_at_b_end=0)
    assert [figure.met for figure in outcome([1.0] * 100, [1.0] * 100, beside=drained_beside).figures()[:3]] == [
        False,
        False,
        False,
    ]
    lost_beside = BesideAStack(alone=[1.0] * 100, b=[1.0] * 98, a_backlog_at_b_end=300)
    assert not outcome([1.0] * 100, [1.0] * 100, beside=lost_beside).all_of_b_delivered


def test_a_scenario_where_none_of_b_arrived_is_reported_without_a_ratio() -> None:
    latency, *_ = outcome([1.0] * 100, []).figures()
    assert (latency.measured, latency.result, latency.met) == ("none delivered", "-", False)


def test_a_throughput_counts_the_requests_in_a_window() -> None:
    arrivals = Arrivals(every=[0.5, 1.0, 1.5, 2.0, 2.5, 9.0])
    assert arrivals.rate(0.0, 2.0) == 1.5  # 0.5, 1.0, 1.5: the window's end is not in it
    assert arrivals.rate(2.0, 4.0) == 1.0


def test_b_is_timed_from_each_events_publish_to_its_deliverys_first_request() -> None:
    sent = {"event-1": 10.0, "event-2": 11.0, "event-3": 12.0}
    arrivals = Arrivals(first={delivery_id("event-1", "sub"): 10.5, delivery_id("event-2", "sub"): 14.0})
    assert sorted(latencies(sent, "sub", arrivals)) == [0.5, 3.0]  # event-3 never arrived
