"""Which subscriptions receive an event (SPEC §3). One predicate; ingest and its tests use it."""

from collections.abc import Iterable

from hookrelay.catalog import WILDCARD
from hookrelay.models import Event, Subscription


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
