"""The matching predicate against a plain reading of SPEC §3, on random subscriptions and events, and
the index of a team's subscriptions against the plain scan."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from records import subscription

from hookrelay import matching as matching_module
from hookrelay.catalog import event_names
from hookrelay.matching import SubscriptionIndex, matches, matching
from hookrelay.records import Event, Subscription

TEAMS = st.sampled_from(["acme", "globex"])
NAMES = st.sampled_from(sorted(event_names())[:4])
SCOPES = st.sampled_from(["app", "public_api", "connector"])
WORKSPACES = st.sampled_from(["ws-1", "ws-2", "ws-3"])


def selection(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.just(["*"]) | st.lists(values, min_size=1, max_size=3, unique=True)


subscriptions = st.builds(
    lambda team, enabled, sandbox, names, scopes, workspaces, index: Subscription(
        id=f"00000000-0000-4000-8000-{index:012d}",
        team_id=team,
        endpoint="https://hooks.example.com/x",
        secret_key="whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=",
        enabled=enabled,
        sandbox=sandbox,
        subscribed_events=names,
        scopes=scopes,
        workspaces=workspaces,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
    ),
    TEAMS,
    st.booleans(),
    st.booleans(),
    selection(NAMES),
    selection(SCOPES),
    selection(WORKSPACES),
    st.integers(0, 10**6),
)
events = st.builds(
    lambda team, name, sandbox, scope, workspace: Event(
        event_id="11111111-2222-4333-8444-555555555555",
        event_name=name,
        event_time="2026-01-01T00:00:00.000Z",
        team_id=team,
        sandbox=sandbox,
        scope=scope,
        workspace_id=workspace,
        data={},
    ),
    TEAMS,
    NAMES,
    st.booleans(),
    st.none() | SCOPES,
    st.none() | WORKSPACES,
)


def oracle(subscription: Subscription, event: Event) -> bool:
    """SPEC §3 read literally, field by field."""
    if subscription.team_id != event.team_id or not subscription.enabled:
        return False
    if subscription.sandbox != event.sandbox:
        return False
    for allowed, value in (
        (subscription.subscribed_events, event.event_name),
        (subscription.scopes, event.scope),
        (subscription.workspaces, event.workspace_id),
    ):
        if allowed == ["*"]:
            continue
        if value is None or value not in allowed:
            return False
    return True


@given(subscriptions, events)
def test_matches_agrees_with_the_spec(subscription: Subscription, event: Event) -> None:
    assert matches(subscription, event) == oracle(subscription, event)


@given(st.lists(subscriptions, max_size=30), events)
def test_matching_keeps_exactly_the_matches(candidates: list[Subscription], event: Event) -> None:
    assert matching(candidates, event) == [s for s in candidates if oracle(s, event)]


@given(st.lists(subscriptions, max_size=30), events)
def test_the_index_finds_what_the_scan_finds_in_the_same_order(candidates: list[Subscription], event: Event) -> None:
    assert SubscriptionIndex(candidates).matching(event) == matching(candidates, event)


def test_the_index_looks_only_at_subscriptions_that_may_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """A team of a thousand subscriptions, one per customer workspace, plus two for every workspace: an
    event of one workspace is checked against that workspace's subscriptions and the two, not the team."""
    per_workspace = [
        subscription(index, subscribed_events=["signer.done", "contact.created"], workspaces=[f"ws-{index}"])
        for index in range(1000)
    ]
    every_workspace = [
        subscription(1000, subscribed_events=["*"]),
        subscription(1001, subscribed_events=["signature_request.done"]),
    ]
    index = SubscriptionIndex(per_workspace + every_workspace)
    checked: list[Subscription] = []

    def counting_matches(candidate: Subscription, event: Event) -> bool:
        checked.append(candidate)
        return matches(candidate, event)

    monkeypatch.setattr(matching_module, "matches", counting_matches)
    event = Event(
        event_id="11111111-2222-4333-8444-555555555555",
        event_name="signer.done",
        event_time="2026-01-01T00:00:00.000Z",
        team_id="acme",
        workspace_id="ws-7",
        data={},
    )
    assert index.matching(event) == [per_workspace[7], every_workspace[0]]
    assert len(checked) <= 3
