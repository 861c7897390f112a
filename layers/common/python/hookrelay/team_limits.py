"""Per-team API request limits (issue 24): each team's writes (publishing included) and reads, counted
across every API container, so that no tenant's script can take the API, its own team's items or the
account's EventBridge quota from the others.

Counted in coarse windows: a kind of request gets `burst` requests per window of burst/rate seconds
(writes: 200 per 2 s by default, 100/s on average and 200 at once; as with any fixed window, a span
across a window's edge may hold up to twice the burst). A window's count is split into shards, items
of their own (store/request_counts.py) of at most their share each, so that no counter is a hot key. A
request adds one to a shard its container has not found full yet, chosen at random, with one
conditional write; a refused write marks that shard full in the container until the window ends, and
once every shard is full the container answers 429 from memory. So, per counted request:
- one under the limit costs one write (1 WCU);
- one over it costs at most one refused write per shard and container in a window, then nothing;
- one counter item takes at most (its share + one refusal per API container) per window: with the
  defaults (200 / 4 shards + 150 containers, the API's reserved concurrency) / 2 s = 100 writes/s,
  a tenth of a partition's 1 000 (SPEC §8; tests/unit/test_template.py checks it).

Reads may go READ_ALLOWANCE times faster: a read costs only the team's own partition (3 000 read
units a second per key, half a unit for an eventually consistent one) and no shared quota, and the
portal reads in bursts (a page asks for the session, the catalog, the webhooks and their deliveries).
"""

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from hookrelay.observability import log_failure
from hookrelay.store.request_counts import RequestCounts

READ_ALLOWANCE = 5
# Requests per second one shard of a window takes on average: 4 shards at 100/s.
SHARD_RATE = 25
# Kept this long after its window; TTL removes it.
KEPT_SECONDS = 3600


def portal_requests(team_id: str) -> str:
    """Whose requests a team's portal links are counted as: apart from its API keys' (team ids hold no '#')."""
    return f"{team_id}#portal"


class RequestKind(StrEnum):
    WRITE = "write"
    READ = "read"


@dataclass(frozen=True)
class Limit:
    rate: float  # requests per second, on average
    burst: int  # requests per window

    @property
    def window_seconds(self) -> float:
        return self.burst / self.rate

    @property
    def shards(self) -> int:
        return min(self.burst, math.ceil(self.rate / SHARD_RATE))

    def share(self, shard: int) -> int:
        """What one shard of a window holds: the burst split as evenly as whole requests allow."""
        return self.burst // self.shards + (shard < self.burst % self.shards)


def limits(requests_per_second: float, burst: int) -> dict[RequestKind, Limit]:
    """The limits of each kind of request, from the writes' (HOOKRELAY_TEAM_REQUESTS_PER_SECOND, _BURST)."""
    return {
        RequestKind.WRITE: Limit(requests_per_second, burst),
        RequestKind.READ: Limit(requests_per_second * READ_ALLOWANCE, burst * READ_ALLOWANCE),
    }


class TeamLimiter:
    """Admits a team's requests within its limits; one per API container, remembering the shards it found full."""

    def __init__(
        self,
        counts: RequestCounts,
        limits_by_kind: dict[RequestKind, Limit],
        clock: Callable[[], float] = time.time,
        choose: Callable[[Sequence[int]], int] = random.choice,
    ):
        self._counts = counts
        self._limits = limits_by_kind
        self._clock = clock
        self._choose = choose
        # (requester, kind) -> (window, the shards of that window found full)
        self._full: dict[tuple[str, RequestKind], tuple[int, set[int]]] = {}

    def limit(self, kind: RequestKind) -> Limit:
        return self._limits[kind]

    def admit(self, requester: str, kind: RequestKind) -> int | None:
        """Count the request; None when it is within the requester's limit, else the seconds until the window
        ends. `requester`: a team's id for its API keys' requests, portal_requests(team) for its portal links'."""
        limit = self._limits[kind]
        now = self._clock()
        window = int(now // limit.window_seconds)
        window_ends = (window + 1) * limit.window_seconds
        found_window, full = self._full.get((requester, kind), (window, set()))
        if found_window != window:
            full = set()
        self._full[requester, kind] = (window, full)
        while open_shards := [shard for shard in range(limit.shards) if shard not in full]:
            shard = self._choose(open_shards)
            key = f"{requester}#{kind}#{window}#{shard}"
            try:
                if self._counts.take(key, limit.share(shard), int(window_ends) + KEPT_SECONDS):
                    return None
            except Exception as error:
                # The limit protects the API; it must never be why a request fails.
                log_failure(
                    "team limit not counted; the request is let through", error, level="WARNING", team_id=requester
                )
                return None
            full.add(shard)
        return max(1, math.ceil(window_ends - now))
