"""The sweeper: hands due retries from the deliveries table's due index back to the delivery queue, and
rate-limited deliveries whose slots come within a queue delay from its wait partitions.

A delivery whose last attempt the endpoint answered slowly goes to the slow lane instead
(hookrelay.slow_answers.Lanes), as the retries delivery queues itself do: swept to the delivery queue,
a slow endpoint's retries would each hold one of its invocations, or be moved, again.
"""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from hookrelay import clock
from hookrelay.observability import log_failure
from hookrelay.queues import SQS_BATCH_LIMIT, Message, Queue, delivery_message
from hookrelay.rate_limit import LONGEST_DELAY, SWEEP_MARGIN, wait_for
from hookrelay.retry import SWEEPER_LEASE
from hookrelay.slow_answers import Lanes, send_by_lane
from hookrelay.store.due_retries import Claim, DueRetries, due_shard_name, wait_shard_name
from hookrelay.store.retries import refused_for_now
from hookrelay.time_budget import ANSWER_SECONDS, TimeBudget

PAGE = 100
# Shards read at once (each its own thread).
SHARD_CONCURRENCY = 8


def stop_seconds(aws_call_seconds: float) -> float:
    """What a shard keeps in hand when it makes its next call (a page's read or a claim): that call, the
    send of the retries it has claimed and not yet sent (fewer than ten, one SendMessageBatch), each at its
    worst (`aws_call_seconds`), and the answer. With less left, it sends what it holds and stops."""
    return 2 * aws_call_seconds + ANSWER_SECONDS


class Sweeper:
    def __init__(
        self,
        *,
        due_retries: DueRetries,
        delivery_queue: Queue,
        slow_lane: Queue,
        shards: int,
        aws_call_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """`aws_call_seconds`: the longest one AWS call can take (AwsCallLimits.worst_call_seconds)."""
        self._due_retries = due_retries
        self._lanes = Lanes(delivery_queue, slow_lane)
        self._shards = shards
        self._stop_seconds = stop_seconds(aws_call_seconds)
        self._monotonic = monotonic

    def sweep(self, now: datetime, budget: TimeBudget) -> int:
        """Enqueue every retry due by `now`, reading the index's shards in parallel; returns how many.

        Each one is claimed first with a conditional write that moves it a lease into the future, so
        two sweepers never enqueue it twice, and one whose message is lost is swept again later.
        Claims stop when `budget` runs short (stop_seconds), and what was claimed is enqueued before:
        none is left to wait out its lease.
        """
        started = self._monotonic()
        positions = self._positions()
        moved = dict(positions or {})
        with ThreadPoolExecutor(max_workers=min(self._shards, SHARD_CONCURRENCY)) as pool:
            retries = pool.map(lambda shard: self._sweep_shard(due_shard_name(shard), now, budget), range(self._shards))
            # Without its positions, the sweep cannot tell where the wait partitions' hand-over stopped.
            shards = [wait_shard_name(index) for index in range(self._shards)] if positions is not None else []
            handed = sum(pool.map(lambda shard: self._hand_over(shard, now, started, budget, moved), shards))
            swept = sum(retries)
        if positions is not None and moved != positions:
            try:
                self._due_retries.keep_sweep_positions(moved)
            except Exception as error:
                _unless_refused_for_now(error, "the sweep's positions not kept; the next sweep hands over again")
        return swept + handed

    def _positions(self) -> dict[str, Any] | None:
        """Where the last sweep stopped in each wait partition; None when DynamoDB does not answer for now."""
        try:
            return self._due_retries.sweep_positions()
        except Exception as error:
            _unless_refused_for_now(error, "the sweep's positions not read; the next sweep hands over the waiting")
            return None

    def _hand_over(
        self, shard: str, now: datetime, started: float, budget: TimeBudget, positions: dict[str, Any]
    ) -> int:
        """Put on the queue, each delayed until its slot, the deliveries of a `wait#<n>` partition whose
        rate-limit slots are at most LONGEST_DELAY - SWEEP_MARGIN away; returns how many.

        No write per delivery: the partition is read in slot order from where the last sweep stopped
        (`positions`, moved here and written once by the sweep after every send), so each is handed over
        once; a sweep that fails before writing them hands them over again, and each record's slot keeps
        them from taking others.
        """
        until = clock.iso(now + LONGEST_DELAY - SWEEP_MARGIN)
        handed = 0
        try:
            while budget.allows(self._stop_seconds):
                page = self._due_retries.waiting(shard, until, positions.get(shard), PAGE)
                if not page.items or page.next_position is None:
                    break
                waiting = self._due_retries.waiting_attempts([delivery_id for delivery_id, _ in page.items])
                # Delayed from the moment they are sent, not from the sweep's start: the due partitions go
                # first, and a message that comes over 50 ms after its slot takes another (rate_limit.LATE).
                sent_at = now + timedelta(seconds=self._monotonic() - started)
                self._lanes.send(
                    (
                        delivery_message(
                            delivery_id,
                            waits.attempt,
                            team_id=waits.team_id,
                            delay_seconds=_delay_until(waits.slot_at, sent_at),
                        ),
                        waits.last_latency_ms,
                    )
                    for delivery_id, waits in waiting.items()
                )
                handed += len(waiting)
                positions[shard] = page.next_position
        except Exception as error:
            _unless_refused_for_now(error, "a wait partition's hand-over stopped; the next sweep goes on", shard=shard)
        return handed

    def _sweep_shard(self, shard: str, now: datetime, budget: TimeBudget) -> int:
        """Claim the shard's due retries and send them ten at a time to their lane; what is claimed is sent
        even when a later call fails."""
        held: dict[Queue, list[Message]] = {self._lanes.delivery_queue: [], self._lanes.slow_lane: []}
        enqueued = 0
        try:
            for delivery_id, claim in self._claims(shard, now, budget):
                lane = self._lanes.of(claim.last_latency_ms)
                held[lane].append(delivery_message(delivery_id, claim.attempt, team_id=claim.team_id))
                if len(held[lane]) == SQS_BATCH_LIMIT:
                    batch, held[lane] = held[lane], []
                    lane.send(batch)
                    enqueued += len(batch)
        except Exception as error:
            _unless_refused_for_now(error, "a due partition's sweep stopped; the next sweep goes on", shard=shard)
        finally:
            send_by_lane(held)
        return enqueued + sum(len(messages) for messages in held.values())

    def _claims(self, shard: str, now: datetime, budget: TimeBudget) -> Iterator[tuple[str, Claim]]:
        """(delivery id, its claim: the attempt to enqueue and its team) of the shard's due retries
        claimed, page after page, while `budget` allows the next call.

        The index is eventually consistent: it may still show retries already claimed (by this sweep
        or an earlier one) with their old due_at. Reading on from the last page, never again from the
        top, and stopping at a page that claimed nothing keeps such rows from making a sweep spin;
        whatever is left is swept a minute later.
        """
        lease_until = clock.iso(now + SWEEPER_LEASE)
        after = None
        while budget.allows(self._stop_seconds):
            page = self._due_retries.due(shard, clock.iso(now), PAGE, after)
            claimed_any = False
            for delivery_id, due_at in page.items:
                if not budget.allows(self._stop_seconds):
                    return
                claim = self._due_retries.claim(delivery_id, due_at, lease_until)
                if claim is not None:
                    claimed_any = True
                    yield delivery_id, claim
            if not claimed_any or page.next_position is None:
                return
            after = page.next_position


def _unless_refused_for_now(error: Exception, message: str, **extra: Any) -> None:
    """Log a call DynamoDB or SQS refused for now (it did not answer in time, or throttled): what that call
    was part of stops, and the next sweep, a minute later, does it. Anything else is a bug: raised."""
    if not refused_for_now(error):
        raise error
    log_failure(message, error, **extra)


def _delay_until(slot: str, now: datetime) -> int:
    return wait_for(clock.parse_moment(slot), now).delay_seconds
