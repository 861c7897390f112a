"""Which subscriptions receive an event (SPEC §3). One predicate; ingest and its tests use it."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from hookrelay.catalog import WILDCARD
from hookrelay.records import Event, Subscription


def selects(selection: list[str], value: str | None) -> bool:
    """A list selects a value it names; ['*'] selects everything, including no value at all."""
    return WILDCARD in selection or (value is not None and value in selection)


def matches(subscription: Subscription, event: Event) -> bool:
    return (
        subscription.team_id == event.team_id
        and subscription.enabled
        and subscription.sandbox == event.sandbox
        and selects(subscription.subscribed_events, event.event_name)
        and selects(subscription.scopes, event.scope)
        and selects(subscription.workspaces, event.workspace_id)
    )


def matching(subscriptions: Iterable[Subscription], event: Event) -> list[Subscription]:
    return [subscription for subscription in subscriptions if matches(subscription, event)]


@dataclass(frozen=True)
class _Selections:
    """The positions of the subscriptions whose list (of one field) names each value, and of those whose
    list is ['*'], each in the subscriptions' order."""

    naming: dict[str, list[int]]
    everything: list[int]

    @classmethod
    def of(cls, selections: Iterable[list[str]]) -> "_Selections":
        naming: defaultdict[str, list[int]] = defaultdict(list)
        everything = []
        for position, selection in enumerate(selections):
            if WILDCARD in selection:
                everything.append(position)
            else:
                for value in dict.fromkeys(selection):
                    naming[value].append(position)
        return cls(dict(naming), everything)

    def selecting(self, value: str | None) -> tuple[list[int], list[int]]:
        """The subscriptions that select `value` by this field: those naming it and those taking everything."""
        return self.naming.get(value, []) if value is not None else [], self.everything


# Each selection list of a subscription, and the field of an event it selects.
_FIELDS = (
    (attrgetter("subscribed_events"), attrgetter("event_name")),
    (attrgetter("scopes"), attrgetter("scope")),
    (attrgetter("workspaces"), attrgetter("workspace_id")),
)


class SubscriptionIndex:
    """A team's subscriptions indexed by the values of their event names, scopes and workspaces.

    Matching an event checks only the subscriptions that the field most selective for this event lets
    through (for a platform with a subscription per customer workspace, that workspace's; otherwise
    usually the event name's), plus those taking every value of that field; the predicate decides on
    those. The answer is `matching(subscriptions, event)`, in the same order, at a cost that grows with
    those candidates rather than with the team.
    """

    def __init__(self, subscriptions: Sequence[Subscription]):
        self._subscriptions = subscriptions
        self._fields = [(_Selections.of(map(listed, subscriptions)), published) for listed, published in _FIELDS]

    def matching(self, event: Event) -> list[Subscription]:
        naming, everything = min(
            (selections.selecting(published(event)) for selections, published in self._fields),
            key=lambda candidates: len(candidates[0]) + len(candidates[1]),
        )
        # Both lists ascend, so their sorted union keeps the subscriptions' order.
        return matching((self._subscriptions[position] for position in sorted(naming + everything)), event)
