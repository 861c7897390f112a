"""Tenant isolation (issue 8, R4): two teams, through the API function and ingest against moto.

Every route with the other team's ids is 404 and changes nothing; lists and delivery logs never show
the other team's data; one team's events never reach the other's subscriptions.
"""

from typing import Any

import pytest

from api_client import NO_KEY, ApiClient
from api_contract import assert_problem, webhook
from hookrelay.records import delivery_id
from hookrelay_cli.local.workers import QueuePoller
from integration.test_delivery_log import add_delivery, queued_jobs, recorded, stored_subscription
from integration.test_ingest import delivery_messages, poll_until_empty, publish

# A body each route accepts, so that its 404 is about the ids, not a 422 about the body. A new route
# that requires a body fails below until it has one here.
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/v3/webhooks/{webhook_id}"): {"description": "taken over", "enabled": False},
    ("POST", "/v3/webhooks/{webhook_id}/recover"): {"since": "2020-01-01T00:00:00Z"},
    ("POST", "/v3/webhooks/{webhook_id}/test"): {"event_name": "signer.done"},
    ("POST", "/v3/webhooks/{webhook_id}/secret/rotate"): {"secret_key": "a-chosen-secret-of-24-chars"},
}
KNOWN_ROUTES_WITH_IDS = {
    ("GET", "/v3/webhooks/{webhook_id}"),
    ("PATCH", "/v3/webhooks/{webhook_id}"),
    ("DELETE", "/v3/webhooks/{webhook_id}"),
    ("POST", "/v3/webhooks/{webhook_id}/secret/rotate"),
    ("GET", "/v3/webhooks/{webhook_id}/deliveries"),
    ("GET", "/v3/webhooks/{webhook_id}/deliveries/{delivery_id}"),
    ("POST", "/v3/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
    ("POST", "/v3/webhooks/{webhook_id}/recover"),
    ("POST", "/v3/webhooks/{webhook_id}/test"),
}


def created(client: ApiClient, **fields: object) -> dict[str, Any]:
    response = client.post("/v3/webhooks", webhook(**fields))
    assert response.status == 201, response.body
    subscription: dict[str, Any] = response.json()
    return subscription


def every_page(client: ApiClient, path: str) -> list[str]:
    """The ids of every item of a list route, one item per page."""
    ids: list[str] = []
    cursor = None
    while True:
        page = client.get(f"{path}{'&' if '?' in path else '?'}limit=1" + (f"&after={cursor}" if cursor else ""))
        assert page.status == 200, page.body
        ids.extend(item["id"] for item in page.json()["data"])
        cursor = page.json()["meta"]["next_cursor"]
        if cursor is None:
            return ids


def routes_with_ids(client: ApiClient) -> list[tuple[str, str, bool]]:
    """(method, path template, body required) of every documented route with an id in its path."""
    document = client.get("/v3/openapi.json", key=NO_KEY)
    assert document.status == 200
    return [
        (method.upper(), path, bool(operation.get("requestBody", {}).get("required")))
        for path, operations in document.json()["paths"].items()
        if "{" in path
        for method, operation in operations.items()
    ]


def test_every_route_with_the_other_teams_ids_is_404_and_changes_nothing(api: ApiClient, other_api: ApiClient) -> None:
    mine = created(api, description="team a's")
    my_delivery = add_delivery(mine, "team-a", 5, "failed")
    theirs = created(other_api)
    before = api.get(f"/v3/webhooks/{mine['id']}").json()
    routes = routes_with_ids(api)
    assert {(method, path) for method, path, _ in routes} >= KNOWN_ROUTES_WITH_IDS

    tried = []
    for method, template, body_required in routes:
        if body_required and (method, template) not in BODIES:
            pytest.fail(f"add a body {method} {template} accepts to BODIES")
        # Team a's subscription; and for a delivery route, team b's own subscription with a's delivery.
        subscriptions = [mine["id"], theirs["id"]] if "{delivery_id}" in template else [mine["id"]]
        for subscription_id in subscriptions:
            path = template.format(webhook_id=subscription_id, delivery_id=my_delivery.id)
            response = other_api.request(method, path, json_body=BODIES.get((method, template)))
            assert response.status == 404, (method, path, response.body)
            assert_problem(response, 404)
            tried.append(f"{method} {path}")
    assert len(tried) == len(routes) + sum("{delivery_id}" in path for _, path, _ in routes)

    assert api.get(f"/v3/webhooks/{mine['id']}").json() == before
    stored = stored_subscription("team-a", mine["id"])
    assert stored.secret_key == mine["secret_key"] and stored.previous_secret_key is None
    assert queued_jobs() == []
    record = recorded(my_delivery.id)
    assert record and record.status == "failed" and record.attempt_count == 1 and record.requested_attempt is None
    assert [item["id"] for item in api.get(f"/v3/webhooks/{mine['id']}/deliveries").json()["data"]] == [my_delivery.id]
    assert other_api.get(f"/v3/webhooks/{theirs['id']}/deliveries").json()["data"] == []


def test_lists_never_show_the_other_teams_subscriptions(api: ApiClient, other_api: ApiClient) -> None:
    mine = {created(api)["id"] for _ in range(3)}
    theirs = {created(other_api)["id"] for _ in range(2)}
    assert sorted(every_page(other_api, "/v3/webhooks")) == sorted(theirs)
    assert sorted(every_page(api, "/v3/webhooks")) == sorted(mine)
    # Team a's cursor given to team b pages on within team b only.
    cursor = api.get("/v3/webhooks?limit=1").json()["meta"]["next_cursor"]
    shown = other_api.get(f"/v3/webhooks?after={cursor}").json()["data"]
    assert {item["id"] for item in shown} <= theirs


def test_delivery_logs_never_show_the_other_teams_deliveries(api: ApiClient, other_api: ApiClient) -> None:
    mine, theirs = created(api), created(other_api)
    my_deliveries = {add_delivery(mine, "team-a", age, "failed").id for age in (50, 40, 30)}
    their_deliveries = {
        add_delivery(theirs, "team-b", age, outcome).id for age, outcome in ((20, "failed"), (10, None))
    }
    log = f"/v3/webhooks/{theirs['id']}/deliveries"
    assert sorted(every_page(other_api, log)) == sorted(their_deliveries)
    assert set(every_page(other_api, f"{log}?status=failed")) <= their_deliveries
    assert sorted(every_page(api, f"/v3/webhooks/{mine['id']}/deliveries")) == sorted(my_deliveries)


def test_events_of_one_team_never_reach_the_other_teams_subscriptions(
    api: ApiClient, other_api: ApiClient, ingest: QueuePoller
) -> None:
    mine = [created(api, subscribed_events=["*"])["id"], created(api, subscribed_events=["signer.done"])["id"]]
    theirs = [created(other_api, subscribed_events=["*"])["id"], created(other_api)["id"]]
    created(other_api, subscribed_events=["signer.done"], sandbox=True)

    mine_event, their_event = "0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b", "5b0c2b8e-2c55-4e0e-9a57-9d3f5e0c7a11"
    publish(api, event_id=mine_event)
    poll_until_empty(ingest)
    expected = {delivery_id(mine_event, subscription): subscription for subscription in mine}
    messages = delivery_messages()
    assert {message["delivery_id"]: message["origin"]["subscription_id"] for message in messages} == expected
    assert {message["origin"]["team_id"] for message in messages} == {"team-a"}
    for subscription_id in theirs:
        assert other_api.get(f"/v3/webhooks/{subscription_id}/deliveries").json()["data"] == []

    # The same event id from team b is b's own event: it reaches b's matching subscriptions only.
    publish(other_api, event_id=mine_event)
    publish(other_api, event_id=their_event)
    poll_until_empty(ingest)
    reached = [message["origin"] for message in delivery_messages()]
    assert {(origin["team_id"], origin["subscription_id"]) for origin in reached} == {("team-b", theirs[0])}
