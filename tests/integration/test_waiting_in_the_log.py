"""First attempts waiting on the delivery queue for their rate limit's slot, as the delivery log shows them
(issue 23): listed as `waiting` with their slot, before they have a record, at the cost of one write a
batch."""

from datetime import timedelta
from typing import Any

import pytest

from api_client import ApiClient
from api_contract import assert_problem, webhook
from hookrelay import clock, wiring
from hookrelay.aws import table
from hookrelay.delivery import Deliverer
from hookrelay.ingest import new_delivery
from hookrelay.pagination import encode_cursor
from hookrelay.queues import delivery_message
from hookrelay.records import Attempt, Delivery, Event
from hookrelay.senders import AttemptResult, Request, Senders
from hookrelay.settings import get_settings
from hookrelay.store.deliveries import AttemptOutcome, DynamoDeliveryStore
from hookrelay.store.events import DynamoEventStore
from hookrelay.store.rate_limits import DynamoRateLimiter
from hookrelay.time_budget import UNLIMITED
from integration.test_delivery import CountedWrites, queued_jobs
from integration.test_delivery_log import stored_subscription

pytestmark = pytest.mark.usefixtures("stack")


class Accepting:
    """An endpoint that answers 204 at once."""

    deadline_seconds = 1.0

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, request: Request, deadline_seconds: float) -> AttemptResult:
        self.sent.append(request.headers["webhook-id"])
        return AttemptResult(status_code=204, latency_ms=1)


def rate_limited(api: ApiClient) -> dict[str, Any]:
    response = api.post("/v3/webhooks", webhook(description="one a second", rate_limit=1))
    assert response.status == 201, response.body
    created: dict[str, Any] = response.json()
    return created


def published(subscription: dict[str, Any], count: int) -> list[Delivery]:
    """`count` deliveries as fan-out leaves them: their events stored, no record until their first attempt."""
    stored = stored_subscription("team-a", str(subscription["id"]))
    made = []
    for number in range(count):
        event = Event(
            event_id=f"00000000-0000-4000-8000-{number:012d}",
            event_name="signature_request.done",
            event_time=clock.now_iso(),
            team_id="team-a",
            data={"signature_request": {"id": f"sr-{number}"}},
        )
        delivery = new_delivery(event, stored)
        DynamoEventStore(table(get_settings().deliveries_table)).keep(event, delivery.expires_at)
        made.append(delivery)
    return made


def deliverer(endpoint: Accepting) -> Deliverer:
    settings = get_settings()
    return wiring.deliverer(
        settings,
        senders=Senders(web=endpoint),
        rate_limiter=DynamoRateLimiter(table(settings.deliveries_table), spacing_seconds=0),
        sleep=lambda _: None,
    )


def first_attempts(deliveries: list[Delivery]) -> list[tuple[str, str]]:
    return [
        (f"m{number}", delivery_message(each.id, 1, team_id="team-a", origin=each.origin()).body)
        for number, each in enumerate(deliveries)
    ]


def every_page(api: ApiClient, path: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.get(path + (f"&after={cursor}" if cursor else "")).json()
        listed += page["data"]
        cursor = page["meta"]["next_cursor"]
        if cursor is None:
            return listed


def test_first_attempts_waiting_on_the_queue_are_listed_as_waiting_with_their_slots_until_attempted(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription = rate_limited(api)
    deliveries = published(subscription, 5)
    endpoint = Accepting()
    # The batch at one moment: on a loaded machine, an attempt's thread starting more than 300 ms after
    # the slots were taken found the first slot passed (LATE) and put it back on the queue.
    moment = clock.utc_now()
    with CountedWrites() as writes, monkeypatch.context() as frozen:
        frozen.setattr(clock, "utc_now", lambda: moment)
        reports = deliverer(endpoint).deliver_batch(first_attempts(deliveries), UNLIMITED)
    # Slots 1.05 s apart: the first two waited for in the container and sent; three wait on the queue,
    # listed in one write beside the slots' and the two attempts'.
    assert [report.outcome for report in reports] == ["delivered"] * 2 + ["waiting"] * 3
    assert len(writes.keys) == 4 and writes.keys[1].startswith(f"waits#{subscription['id']}#")
    slots = {delivery_id: job.slot_at for delivery_id, (job, _) in queued_jobs(3).items()}
    base = f"/v3/webhooks/{subscription['id']}/deliveries"

    listed = api.get(base).json()["data"]
    waiting = [each.id for each in reversed(deliveries[2:])]  # the latest slot first
    assert [item["id"] for item in listed[:3]] == waiting
    for item in listed[:3]:
        assert item["status"] == "waiting" and item["attempt_count"] == 0
        assert item["next_attempt_at"] == slots[item["id"]]
    assert sorted(item["id"] for item in listed[3:]) == sorted(each.id for each in deliveries[:2])
    assert {item["status"] for item in listed[3:]} == {"delivered"}
    # A page at a time lists the same deliveries, each once; a status filter lists the waiting alone.
    assert every_page(api, f"{base}?limit=1") == listed
    assert every_page(api, f"{base}?limit=2") == listed
    assert [item["id"] for item in every_page(api, f"{base}?status=waiting&limit=2")] == waiting
    delivered = every_page(api, f"{base}?status=delivered&limit=1")
    assert [item["id"] for item in delivered] == [item["id"] for item in listed[3:]]
    # One can be read: what it will send; asked to retry, it says it is on its way.
    detail = api.get(f"{base}/{waiting[0]}").json()
    assert detail["status"] == "waiting" and detail["next_attempt_at"] == slots[waiting[0]]
    assert detail["attempts"] == [] and detail["request"]["headers"]["webhook-id"] == waiting[0]
    assert_problem(api.post(f"{base}/{waiting[0]}/retry"), 409)

    # Attempted, each is listed once, as its record.
    for delivery in deliveries[2:]:
        attempt = Attempt(at=clock.now_iso(), status_code=204, latency_ms=3)
        assert DynamoDeliveryStore(table(get_settings().deliveries_table)).record_attempt(
            delivery, 1, attempt, AttemptOutcome("delivered")
        )
    after = every_page(api, f"{base}?limit=2")
    assert sorted(item["id"] for item in after) == sorted(each.id for each in deliveries)
    assert {item["status"] for item in after} == {"delivered"}


class ListingRefused(DynamoDeliveryStore):
    def list_queue_waits(self, waits: Any, listed_at: Any) -> None:
        raise ConnectionError("DynamoDB did not answer")


def test_a_listing_that_fails_costs_the_log_its_entries_not_the_deliveries(api: ApiClient) -> None:
    subscription = rate_limited(api)
    deliveries = published(subscription, 4)
    settings = get_settings()
    deliverer = wiring.deliverer(
        settings,
        deliveries=ListingRefused(table(settings.deliveries_table)),
        senders=Senders(web=Accepting()),
        rate_limiter=DynamoRateLimiter(table(settings.deliveries_table), spacing_seconds=0),
        sleep=lambda _: None,
    )
    reports = deliverer.deliver_batch(first_attempts(deliveries), UNLIMITED)
    assert [report.outcome for report in reports] == ["delivered"] * 2 + ["waiting"] * 2
    assert sorted(queued_jobs(2)) == sorted(each.id for each in deliveries[2:])
    listed = api.get(f"/v3/webhooks/{subscription['id']}/deliveries").json()["data"]
    assert sorted(item["id"] for item in listed) == sorted(each.id for each in deliveries[:2])


def test_a_cursor_among_the_waits_with_another_filter_lists_the_records_and_a_crafted_one_is_422(
    api: ApiClient,
) -> None:
    subscription = rate_limited(api)
    deliveries = published(subscription, 5)
    deliverer(Accepting()).deliver_batch(first_attempts(deliveries), UNLIMITED)
    base = f"/v3/webhooks/{subscription['id']}/deliveries"
    among_waits = api.get(f"{base}?limit=1").json()["meta"]["next_cursor"]
    delivered = api.get(f"{base}?status=delivered&after={among_waits}")
    assert delivered.status == 200
    assert sorted(item["id"] for item in delivered.json()["data"]) == sorted(each.id for each in deliveries[:2])
    for crafted in ({"created_at": "~waits#not a time", "delivery_id": deliveries[0].id}, {"created_at": "~"}):
        assert_problem(api.get(f"{base}?after={encode_cursor(crafted)}"), 422, "query.after")
    since = clock.iso(clock.utc_now() - timedelta(hours=1))
    recovered = api.post(f"/v3/webhooks/{subscription['id']}/recover", {"since": since, "after": among_waits})
    assert recovered.status == 202 and recovered.json()["recovered"] == 0, recovered.body
