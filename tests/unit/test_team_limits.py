"""Per-team request limits (issue 24): counted in coarse windows over sharded counters."""

import io
import json
from collections import Counter
from collections.abc import Sequence

import pytest
from botocore.exceptions import ReadTimeoutError
from offline_settings import RESOURCES

from hookrelay.observability import logger
from hookrelay.settings import Settings, SettingsError
from hookrelay.team_limits import READ_ALLOWANCE, Limit, RequestKind, TeamLimiter, limits


class FakeRequestCounts:
    """Counter items in memory; every call is a write, refused or not, as DynamoDB bills it."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.failing = False

    def take(self, key: str, share: int, expires_at: int) -> bool:
        if self.failing:
            raise ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/")
        self.writes[key] += 1
        if self.counts[key] >= share:
            return False
        self.counts[key] += 1
        return True


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(counts: FakeRequestCounts, clock: Clock, rate: float = 100, burst: int = 200) -> TeamLimiter:
    return TeamLimiter(counts, limits(rate, burst), clock=clock)


def test_a_team_gets_its_burst_per_window_then_429s_until_the_window_ends() -> None:
    counts, clock = FakeRequestCounts(), Clock(1_000_000.5)
    team = limiter(counts, clock)
    answers = [team.admit("acme", RequestKind.WRITE) for _ in range(250)]
    assert answers[:200] == [None] * 200
    # The window is 200 / 100 = 2 s, started at 1 000 000: 1.5 s left, answered as 2.
    assert answers[200:] == [2] * 50
    clock.now += 1.5
    assert team.admit("acme", RequestKind.WRITE) is None


def test_over_the_limit_a_container_writes_no_more_once_it_found_every_shard_full() -> None:
    counts, clock = FakeRequestCounts(), Clock()
    team = limiter(counts, clock)
    for _ in range(200):
        team.admit("acme", RequestKind.WRITE)
    refusals = [team.admit("acme", RequestKind.WRITE) for _ in range(1_000)]
    assert all(refusals)
    # 200 admitted, one refused write per shard, then answered from memory.
    assert sum(counts.writes.values()) == 200 + 4


def test_containers_share_the_team_limit() -> None:
    counts, clock = FakeRequestCounts(), Clock()
    containers = [limiter(counts, clock) for _ in range(10)]
    admitted = sum(container.admit("acme", RequestKind.WRITE) is None for _ in range(50) for container in containers)
    assert admitted == 200


def test_no_counter_takes_more_than_its_share_plus_one_refusal_per_container() -> None:
    counts, clock = FakeRequestCounts(), Clock()
    containers = [limiter(counts, clock) for _ in range(150)]
    for _ in range(20):
        for container in containers:
            container.admit("acme", RequestKind.WRITE)
    # 4 shards of 50 each; 150 containers each refused at most once per shard in the window.
    assert max(counts.writes.values()) <= 50 + 150
    # Over a 2 s window: at most 100 writes a second on one key, a tenth of a partition's 1 000.
    assert max(counts.writes.values()) / Limit(100, 200).window_seconds <= 100


def test_teams_and_kinds_are_counted_apart() -> None:
    counts, clock = FakeRequestCounts(), Clock()
    team = limiter(counts, clock, rate=1, burst=1)
    assert team.admit("acme", RequestKind.WRITE) is None
    assert team.admit("acme", RequestKind.WRITE) == 1
    assert team.admit("globex", RequestKind.WRITE) is None
    assert team.admit("acme", RequestKind.READ) is None


def test_reads_may_go_five_times_faster() -> None:
    counts, clock = FakeRequestCounts(), Clock()
    team = limiter(counts, clock)
    admitted = sum(team.admit("acme", RequestKind.READ) is None for _ in range(2_000))
    assert admitted == 200 * READ_ALLOWANCE
    assert limits(100, 200)[RequestKind.READ] == Limit(500, 1_000)


@pytest.mark.parametrize(
    ("rate", "burst", "shards"), [(100, 200, 4), (1, 1, 1), (25, 30, 1), (26, 30, 2), (1000, 1000, 40)]
)
def test_a_window_is_split_in_shards_of_25_requests_a_second_that_hold_the_burst(
    rate: float, burst: int, shards: int
) -> None:
    limit = Limit(rate, burst)
    assert limit.shards == shards
    assert sum(limit.share(shard) for shard in range(shards)) == burst


def test_shards_are_chosen_among_those_not_found_full() -> None:
    counts, clock = FakeRequestCounts(), Clock()
    chosen: list[Sequence[int]] = []

    def first_open(open_shards: Sequence[int]) -> int:
        chosen.append(list(open_shards))
        return open_shards[0]

    team = TeamLimiter(counts, limits(100, 200), clock=clock, choose=first_open)
    for _ in range(51):
        team.admit("acme", RequestKind.WRITE)
    assert chosen[49] == [0, 1, 2, 3]
    assert chosen[-2:] == [[0, 1, 2, 3], [1, 2, 3]]


def test_a_counter_that_cannot_be_reached_admits_the_request_and_says_why_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    counts, clock = FakeRequestCounts(), Clock()
    counts.failing = True
    assert limiter(counts, clock).admit("acme", RequestKind.WRITE) is None
    # An AWS call that did not answer is AWS's, not a bug: no traceback (R1 counts tracebacks as crashes).
    (line,) = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert (line["level"], line["team_id"], line["aws_error_code"]) == ("WARNING", "acme", "ReadTimeoutError")
    assert "Traceback" not in logged.getvalue()


def test_the_limits_are_settings() -> None:
    settings = Settings.from_environment(
        {**RESOURCES, "HOOKRELAY_TEAM_REQUESTS_PER_SECOND": "10", "HOOKRELAY_TEAM_REQUEST_BURST": "30"}
    )
    assert (settings.team_requests_per_second, settings.team_request_burst) == (10, 30)
    defaults = Settings.from_environment(RESOURCES)
    assert (defaults.team_requests_per_second, defaults.team_request_burst) == (100, 200)


@pytest.mark.parametrize(
    ("rate", "burst", "named"),
    [
        ("0", "10", "HOOKRELAY_TEAM_REQUESTS_PER_SECOND"),
        ("10", "0", "HOOKRELAY_TEAM_REQUEST_BURST"),
        ("100", "50", "HOOKRELAY_TEAM_REQUEST_BURST \\(50\\) is less than"),
    ],
)
def test_limits_that_would_make_windows_shorter_than_a_second_fail_at_start(rate: str, burst: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_environment(
            {**RESOURCES, "HOOKRELAY_TEAM_REQUESTS_PER_SECOND": rate, "HOOKRELAY_TEAM_REQUEST_BURST": burst}
        )
