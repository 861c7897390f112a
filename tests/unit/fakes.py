"""In-memory stand-ins for the store interfaces."""

import dataclasses
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from hookrelay.errors import TeamLimitReached
from hookrelay.queues import Message
from hookrelay.records import Event, Subscription
from hookrelay.store.due_retries import Claim, DueSlice, WaitingAttempt
from hookrelay.store.events import KeptEvent
from hookrelay.store.subscriptions import SubscriptionSlice, next_revision


class FakeSubscriptionStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Subscription] = {}
        self.team_versions: Counter[str] = Counter()
        self.changes: dict[tuple[str, int], str] = {}  # (team, version) -> the subscription it changed
        self.slow_marks: dict[str, dict[str, int]] = {}  # team -> subscription -> the epoch second it ends

    def create(self, subscription: Subscription, limit: int) -> Subscription:
        if sum(team == subscription.team_id for team, _ in self.items) >= limit:
            raise TeamLimitReached(f"A team may have at most {limit} webhook subscriptions")
        return self._store(next_revision(subscription))

    def get(self, team_id: str, subscription_id: str) -> Subscription | None:
        return self.items.get((team_id, subscription_id))

    def page(self, team_id: str, limit: int, after_id: str | None) -> SubscriptionSlice:
        ids = sorted(id_ for team, id_ in self.items if team == team_id and (after_id is None or id_ > after_id))
        return SubscriptionSlice([self.items[(team_id, id_)] for id_ in ids[:limit]], has_more=len(ids) > limit)

    def replace(self, subscription: Subscription) -> Subscription | None:
        stored = self.items.get((subscription.team_id, subscription.id))
        if stored is None or stored.revision != subscription.revision:
            return None
        return self._store(next_revision(subscription))

    def delete(self, team_id: str, subscription_id: str) -> bool:
        self._log(team_id, subscription_id)
        return self.items.pop((team_id, subscription_id), None) is not None

    def versions(self, team_ids: Collection[str]) -> dict[str, int]:
        return {team_id: self.team_versions[team_id] for team_id in team_ids if team_id in self.team_versions}

    def versions_and_slow_marks(self, team_ids: Collection[str]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        marks = {team_id: dict(self.slow_marks[team_id]) for team_id in team_ids if team_id in self.slow_marks}
        return self.versions(team_ids), marks

    def mark_slow(self, team_id: str, subscription_id: str, until: int, now: int) -> None:
        self.slow_marks.setdefault(team_id, {})[subscription_id] = until

    def changed_between(self, team_id: str, after: int, upto: int) -> set[str] | None:
        return {self.changes[(team_id, version)] for version in range(after + 1, upto + 1)}

    def all_of_team(self, team_id: str) -> list[Subscription]:
        return [self.items[key] for key in sorted(self.items) if key[0] == team_id]

    def some_of_team(self, team_id: str, subscription_ids: Collection[str]) -> list[Subscription]:
        return [self.items[(team_id, id_)] for id_ in subscription_ids if (team_id, id_) in self.items]

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> Subscription | None:
        stored = self.items.get((team_id, subscription_id))
        if stored and (stored.failing_since is None) != (since is None):
            # A health write: no version moves.
            stored = next_revision(dataclasses.replace(stored, failing_since=since))
            self.items[(team_id, subscription_id)] = stored
        return stored

    def disable(
        self, team_id: str, subscription_id: str, reason: str, at: str, *, failing_since: str | None = None
    ) -> Subscription | None:
        stored = self.items.get((team_id, subscription_id))
        if stored and stored.enabled and (failing_since is None or stored.failing_since == failing_since):
            self._store(
                next_revision(dataclasses.replace(stored, enabled=False, disabled_reason=reason, updated_at=at))
            )
            return None
        return stored

    def _store(self, subscription: Subscription) -> Subscription:
        self.items[(subscription.team_id, subscription.id)] = subscription
        self._log(subscription.team_id, subscription.id)
        return subscription

    def _log(self, team_id: str, subscription_id: str) -> None:
        self.team_versions[team_id] += 1
        self.changes[(team_id, self.team_versions[team_id])] = subscription_id


class FakeEvents:
    def __init__(self) -> None:
        self.events: dict[tuple[str, str], Event] = {}
        self.marks: dict[tuple[str, str], str] = {}

    def keep(self, event: Event, expires_at: int) -> KeptEvent:
        key = (event.team_id, event.event_id)
        return KeptEvent(self.events.setdefault(key, event), self.marks.get(key))

    def record_sent_through(self, team_id: str, event_id: str, subscription_id: str) -> None:
        key = (team_id, event_id)
        self.marks[key] = max(self.marks.get(key, ""), subscription_id)


class Crash(Exception):
    """Stands for the process dying part-way."""


class FakeQueue:
    """Records what was sent; `fail_on_call` makes that send call (1-based) raise, as a crash would."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.calls = 0
        self.fail_on_call: int | None = None

    def send(self, messages: Sequence[Message]) -> None:
        for start in range(0, len(messages), 10):
            self.calls += 1
            if self.calls == self.fail_on_call:
                raise Crash
            self.messages.extend(messages[start : start + 10])


class TooManyReads(Exception):
    """The sweeper read the due index again and again instead of moving on."""


class LaggingDueIndex:
    """The deliveries table and its due_retries index as DynamoDB may show them: a claim moves a
    delivery's due_at in the table at once, while the (eventually consistent) index keeps showing
    the due_at it had. Pages are cut at `limit` with a next position, as DynamoDB cuts them."""

    MAX_READS = 50

    def __init__(self, due_at: dict[str, str]) -> None:
        self.due_at = dict(due_at)
        # Each delivery's last attempt's latency (0 when not given).
        self.last_latency_ms: dict[str, int] = {}
        # Deliveries waiting for a rate-limit slot in the wait partition, by id.
        self.waiting_slots: dict[str, WaitingAttempt] = {}
        self.positions: dict[str, dict[str, Any]] = {}
        self._index = sorted((at, delivery_id) for delivery_id, at in due_at.items())
        self.reads = 0

    def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
        self.reads += 1
        if self.reads > self.MAX_READS:
            raise TooManyReads
        start = (after["due_at"], after["delivery_id"]) if after else ("", "")
        rows = [(delivery_id, at) for at, delivery_id in self._index if start < (at, delivery_id) and at <= now]
        page = rows[:limit]
        if len(page) < limit:
            return DueSlice(page, None)
        last_id, last_at = page[-1]
        return DueSlice(page, {"due_shard": shard, "due_at": last_at, "delivery_id": last_id})

    def claim(self, delivery_id: str, due_at: str, lease_until: str) -> Claim | None:
        if self.due_at.get(delivery_id) != due_at:
            return None
        self.due_at[delivery_id] = lease_until
        return Claim(attempt=2, team_id="acme", last_latency_ms=self.last_latency_ms.get(delivery_id, 0))

    def waiting(self, shard: str, until: str, after: dict[str, Any] | None, limit: int) -> DueSlice:
        start = (after["due_at"], after["delivery_id"]) if after else ("", "")
        rows = sorted((waiting.slot_at, delivery_id) for delivery_id, waiting in self.waiting_slots.items())
        page = [(delivery_id, slot) for slot, delivery_id in rows if start < (slot, delivery_id) and slot <= until]
        page = page[:limit]
        if not page:
            return DueSlice([], None)
        last_id, last_at = page[-1]
        return DueSlice(page, {"due_shard": shard, "due_at": last_at, "delivery_id": last_id})

    def waiting_attempts(self, delivery_ids: Sequence[str]) -> dict[str, WaitingAttempt]:
        return {key: self.waiting_slots[key] for key in delivery_ids if key in self.waiting_slots}

    def sweep_positions(self) -> dict[str, dict[str, Any]]:
        return dict(self.positions)

    def keep_sweep_positions(self, positions: dict[str, dict[str, Any]]) -> None:
        self.positions = dict(positions)
