"""The slow lane: a second delivery queue, with consumers of its own, for the deliveries of endpoints that
answer slowly (README "Fair queues").

A batch holds its delivery invocation until its slowest send answers. Fair queues put a quiet team's
message first in the next receive, but only a free invocation receives: an endpoint that answers after
2 s, with a backlog, would hold every invocation of the delivery queue and make every team wait for one
to come free. So a container that saw an endpoint answer slowly moves that subscription's messages from
the delivery queue to the slow lane (one SQS send, no DynamoDB write) instead of sending them, and
queues its retries there. The slow lane's event source has a MaximumConcurrency of its own, below the
function's reserved concurrency: slow endpoints can hold at most that many invocations, and the rest
stay free for everyone else.

Each container remembers what it saw for about REMEMBERED_FOR: an endpoint that became fast again is
sent from the delivery queue at that container's next look, and one still slow costs a batch of
waiting once per container and period. The period is drawn for each mark within REMEMBERED_SPREAD of
REMEMBERED_FOR: containers that saw an endpoint slow at the same moment (all of them, when a backlog
begins) would otherwise all look again at the same moment, each holding an invocation for the slow
answer, and leave the delivery queue without a free consumer for that long. Messages on the slow
lane are always sent, never moved back: two containers that disagree cannot pass a message between them,
and one that waits for its rate-limit slot waits on the slow lane (hookrelay.admission.Ready.lane).

A container also shares what its delivery-queue batches found slow, as the team's slow marks
(store/team_items.py, SLOW_MARKS; SlowLane.end_batch), and ingest sends a marked subscription's first
attempts straight to the slow lane: the delivery queue's consumers neither wait for nor move them.
"""

import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from hookrelay import clock
from hookrelay.admission import Ready
from hookrelay.observability import log_failure
from hookrelay.outcomes import Outcome, Report, logged
from hookrelay.queues import Message, Queue
from hookrelay.records import Subscription
from hookrelay.slow_answers import answered_slowly
from hookrelay.time_budget import ANSWER_SECONDS, TimeBudget

REMEMBERED_FOR_SECONDS = 60.0
REMEMBERED_SPREAD = 0.25  # each mark lasts 45 to 75 s
# Bounds a container's memory whatever the number of subscriptions; the oldest marks go first.
REMEMBERED_AT_MOST = 10_000
# A container shares an endpoint's mark with ingest (SlowLane.end_batch) at most this often: half the
# shared mark's length, so that a container that keeps finding the endpoint slow renews it before it ends.
SHARED_AGAIN_AFTER_SECONDS = REMEMBERED_FOR_SECONDS / 2


def _mark_length(spread: Callable[[float, float], float]) -> float:
    """How long a mark lasts, drawn within REMEMBERED_SPREAD of REMEMBERED_FOR_SECONDS."""
    return REMEMBERED_FOR_SECONDS * spread(1 - REMEMBERED_SPREAD, 1 + REMEMBERED_SPREAD)


def _remember(kept: OrderedDict[str, float], subscription_id: str, moment: float) -> None:
    """Keep `moment` for the subscription as the newest entry of `kept`, the oldest dropped past REMEMBERED_AT_MOST."""
    kept[subscription_id] = moment
    kept.move_to_end(subscription_id)
    while len(kept) > REMEMBERED_AT_MOST:
        kept.popitem(last=False)


class SlowEndpoints:
    """The subscriptions whose endpoint answered slowly in this container, each for its mark's period."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        spread: Callable[[float, float], float] | None = None,
    ):
        self._monotonic = monotonic
        self._spread = spread or random.Random().uniform  # noqa: S311 - timing, not a secret
        self._slow_until: OrderedDict[str, float] = OrderedDict()
        # A batch's attempts observe from their own threads.
        self._lock = threading.Lock()

    def observe(self, subscription_id: str, latency_ms: int) -> None:
        """An answer (or its absence at the deadline) of the subscription's endpoint, `latency_ms` after the send."""
        with self._lock:
            if not answered_slowly(latency_ms):
                self._slow_until.pop(subscription_id, None)
                return
            _remember(self._slow_until, subscription_id, self._monotonic() + _mark_length(self._spread))

    def is_slow(self, subscription_id: str) -> bool:
        with self._lock:
            until = self._slow_until.get(subscription_id)
            if until is None:
                return False
            if self._monotonic() > until:
                del self._slow_until[subscription_id]
                return False
            return True


class SlowMarks(Protocol):
    """Where a container shares the endpoints it found slow (store/team_items.py, SLOW_MARKS)."""

    def mark_slow(self, team_id: str, subscription_id: str, until: int, now: int) -> None: ...


class SlowLane:
    """The slow lane's queue, and which subscriptions' messages go to it, as this container saw them."""

    def __init__(
        self,
        queue: Queue,
        *,
        marks: SlowMarks | None = None,
        endpoints: SlowEndpoints | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        spread: Callable[[float, float], float] | None = None,
        aws_call_seconds: float = 0.0,
    ):
        """`marks`: where the endpoints a batch of the delivery queue found slow are shared with ingest;
        `spread`: draws each shared mark's length within REMEMBERED_SPREAD, as each remembered one's;
        `aws_call_seconds`: the longest one AWS call can take (a mark's write is two)."""
        self.queue = queue
        self._marks = marks
        self._seconds_a_mark_write_needs = 2 * aws_call_seconds + ANSWER_SECONDS
        self._spread = spread or random.Random().uniform  # noqa: S311 - timing, not a secret
        self._endpoints = endpoints or SlowEndpoints(monotonic, self._spread)
        self._monotonic = monotonic
        self._found_slow: dict[str, str] = {}  # subscription id -> team id, since the last batch's end
        self._found_slow_lock = threading.Lock()  # a batch's attempts observe from their own threads
        self._shared_at: OrderedDict[str, float] = OrderedDict()

    def observe(self, subscription: Subscription, latency_ms: int) -> None:
        self._endpoints.observe(subscription.id, latency_ms)
        if answered_slowly(latency_ms):
            with self._found_slow_lock:
                self._found_slow[subscription.id] = subscription.team_id

    def end_batch(self, *, from_slow_lane: bool, budget: TimeBudget) -> None:
        """Share the endpoints that the batch found slow (by a slow answer, or by moving their messages)
        with ingest, unless it came from the slow lane; each at most once per SHARED_AGAIN_AFTER_SECONDS
        from this container, and each only while its write, at its worst, fits the batch's `budget` (the
        batch's reports come first; the next batch that finds the endpoint slow shares it).
        Each mark lasts REMEMBERED_FOR_SECONDS within REMEMBERED_SPREAD, so that marks written at the
        same moment (an event fanned out to many slow endpoints) do not all end, and get written again,
        at the same moment.

        Only the delivery queue's batches share them: once ingest reads a mark, only the slow lane sends
        to that endpoint, and its containers (up to the lane's concurrency) would otherwise each write
        the mark once a period, on the team's partition. The delivery queue holds an endpoint's messages
        again only when its mark has ended, so a mark is written about once a period per slow endpoint.
        A write that fails leaves the messages to be moved as before: it is logged, and the batch goes on."""
        with self._found_slow_lock:
            found_slow, self._found_slow = self._found_slow, {}
        if from_slow_lane or self._marks is None:
            return
        now, moment = int(clock.utc_now().timestamp()), self._monotonic()
        for subscription_id, team_id in found_slow.items():
            if moment - self._shared_at.get(subscription_id, -math.inf) < SHARED_AGAIN_AFTER_SECONDS:
                continue
            if not budget.allows(self._seconds_a_mark_write_needs):
                return
            _remember(self._shared_at, subscription_id, moment)
            try:
                self._marks.mark_slow(team_id, subscription_id, now + round(_mark_length(self._spread)), now)
            except Exception as error:
                log_failure(
                    "sharing a slow endpoint's mark failed; its messages are moved as before",
                    error,
                    level="WARNING",
                    subscription_id=subscription_id,
                )

    def queue_for(self, subscription_id: str, delivery_queue: Queue) -> Queue:
        """Where a message of the subscription goes: the slow lane, if its endpoint answered slowly."""
        return self.queue if self._endpoints.is_slow(subscription_id) else delivery_queue

    def of_slow_endpoints(self, read: "list[Ready | Report]") -> list[Ready]:
        """The messages of `read` (of the delivery queue) whose endpoints answered slowly: to move, not to send."""
        return [
            each for each in read if isinstance(each, Ready) and self._endpoints.is_slow(each.delivery.subscription_id)
        ]

    def move(self, slow: list[Ready], bodies: dict[str, str]) -> list[Report]:
        """Send `slow` (by message id in `bodies`) to the slow lane as they are, each reported moved; or
        ERROR, received again, if SQS refused them."""
        if not slow:
            return []
        with self._found_slow_lock:
            self._found_slow.update((each.delivery.subscription_id, each.delivery.team_id) for each in slow)
        try:
            self.queue.send([Message(bodies[each.message_id], each.delivery.team_id) for each in slow])
            outcome = Outcome.MOVED_TO_SLOW_LANE
        except Exception as error:  # they fail alone, as an attempt that raises does
            log_failure("moving messages to the slow lane failed; they will be received again", error)
            outcome = Outcome.ERROR
        return [
            logged(
                each.job,
                Report(
                    each.message_id,
                    outcome,
                    subscription_id=each.delivery.subscription_id,
                    event_id=each.delivery.event_id,
                ),
            )
            for each in slow
        ]


def is_slow_lane(event_source_arn: str, slow_lane_url: str) -> bool:
    """Whether a record came from the slow lane: a queue's ARN and URL both end with its name."""
    return event_source_arn.rsplit(":", 1)[-1] == slow_lane_url.rstrip("/").rsplit("/", 1)[-1]
