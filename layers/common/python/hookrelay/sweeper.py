"""The sweeper: hands due retries from the deliveries table's due index back to the delivery queue."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from hookrelay import clock
from hookrelay.queues import Queue, delivery_message
from hookrelay.retry import SWEEPER_LEASE
from hookrelay.store.due_retries import DueRetries, due_shard_name

PAGE = 100
# Shards read at once (each its own thread).
SHARD_CONCURRENCY = 8


class Sweeper:
    def __init__(self, *, due_retries: DueRetries, delivery_queue: Queue, shards: int):
        self._due_retries = due_retries
        self._queue = delivery_queue
        self._shards = shards

    def sweep(self, now: datetime) -> int:
        """Enqueue every retry due by `now`, reading the index's shards in parallel; returns how many.

        Each one is claimed first with a conditional write that moves it a lease into the future, so
        two sweepers never enqueue it twice, and one whose message is lost is swept again later.
        """
        with ThreadPoolExecutor(max_workers=min(self._shards, SHARD_CONCURRENCY)) as pool:
            return sum(pool.map(lambda shard: self._sweep_shard(due_shard_name(shard), now), range(self._shards)))

    def _sweep_shard(self, shard: str, now: datetime) -> int:
        """Read the shard's due retries page after page, claiming each.

        The index is eventually consistent: it may still show retries already claimed (by this sweep
        or an earlier one) with their old due_at. Reading on from the last page, never again from the
        top, and stopping at a page that claimed nothing keeps such rows from making a sweep spin;
        whatever is left is swept a minute later.
        """
        lease_until = clock.iso(now + SWEEPER_LEASE)
        enqueued = 0
        after = None
        while True:
            page = self._due_retries.due(shard, clock.iso(now), PAGE, after)
            messages = []
            for delivery_id, due_at in page.items:
                claim = self._due_retries.claim(delivery_id, due_at, lease_until)
                if claim is not None:
                    messages.append(delivery_message(delivery_id, claim.attempt, team_id=claim.team_id))
            self._queue.send(messages)
            enqueued += len(messages)
            if not messages or page.next_position is None:
                return enqueued
            after = page.next_position
