"""Subscription writes as DynamoDB answers them (botocore's Stubber): what each cancellation reason means."""

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import boto3
import pytest
import records
from boto3.dynamodb.types import TypeSerializer
from botocore import stub
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from hookrelay.aws import Table, python_values
from hookrelay.errors import Unavailable
from hookrelay.http_api import outage
from hookrelay.records import Subscription, with_values
from hookrelay.store.retries import Retries
from hookrelay.store.subscriptions import DynamoSubscriptionStore, next_revision
from hookrelay.store.team_items import stored_bytes

ATTEMPTS = 4
NO_PAUSE = Retries(attempts=ATTEMPTS, first_pause=0, max_pause=0, sleep=lambda _: None)
SUBSCRIPTION = records.subscription()
TEAM_UPDATE = {
    "TableName": "subscriptions",
    "Key": {"team_id": SUBSCRIPTION.team_id, "subscription_id": "#team"},
    "UpdateExpression": "SET version = :next, subscription_count = :count, subscription_bytes = :bytes",
    "ConditionExpression": "version = :read",
}


def typed(values: dict[str, Any]) -> dict[str, Any]:
    """Values as DynamoDB sends and answers them."""
    return dict(TypeSerializer().serialize(values)["M"])


def item_of(subscription: Subscription, **changes: object) -> dict[str, Any]:
    """The subscription's item as DynamoDB answers it."""
    item = {**with_values(subscription), **changes}
    item["subscription_id"] = item.pop("id")
    return typed(item)


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoSubscriptionStore, Stubber]]:
    client = python_values(boto3.client("dynamodb", region_name="us-east-1"))
    with Stubber(client) as stubber:
        yield DynamoSubscriptionStore(Table("subscriptions", client), retries=NO_PAUSE), stubber
        stubber.assert_no_pending_responses()


def cancelled(stubber: Stubber, *codes: str) -> None:
    """A TransactWriteItems answered with TransactionCanceledException, one reason per item, as DynamoDB words it."""
    reasons = ", ".join(codes)
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message=f"Transaction cancelled, please refer cancellation reasons for specific reasons [{reasons}]",
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


def made(stubber: Stubber) -> None:
    stubber.add_response("transact_write_items", {})


def team_read(stubber: Stubber, version: int = 3) -> None:
    """The consistent read of the team's item (and the subscription's) that a logged write starts from."""
    team = {
        "team_id": SUBSCRIPTION.team_id,
        "subscription_id": "#team",
        "version": version,
        "subscription_count": 1,
        "subscription_bytes": 1000,
    }
    stubber.add_response("batch_get_item", {"Responses": {"subscriptions": [typed(team)]}})


def test_a_create_and_a_delete_cancelled_for_a_conflict_are_made_on_the_next_try_not_refused(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    team_read(stubber)
    cancelled(stubber, "None", "TransactionConflict", "None")
    team_read(stubber)
    made(stubber)
    assert store.create(SUBSCRIPTION, limit=1000) is not None
    team_read(stubber)
    cancelled(stubber, "TransactionConflict", "None", "None")
    team_read(stubber)
    made(stubber)
    assert store.delete(SUBSCRIPTION.team_id, SUBSCRIPTION.id) is True


def test_a_write_that_finds_the_version_moved_since_its_read_is_logged_under_the_next_one(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    team_read(stubber, version=3)
    cancelled(stubber, "None", "ConditionalCheckFailed", "None")  # another write made version 4 meanwhile
    team_read(stubber, version=4)
    stubber.add_response(
        "transact_write_items",
        {},
        {
            "TransactItems": [
                stub.ANY,
                {
                    "Update": {
                        **TEAM_UPDATE,
                        "ExpressionAttributeValues": {
                            ":read": 4,
                            ":next": 5,
                            ":count": 2,
                            ":bytes": 1000 + stored_bytes(next_revision(SUBSCRIPTION)),
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": "subscriptions",
                        "Item": {
                            "team_id": SUBSCRIPTION.team_id,
                            "subscription_id": "#change#0005",
                            "version": 5,
                            "changed": SUBSCRIPTION.id,
                        },
                    }
                },
            ]
        },
    )
    assert store.create(SUBSCRIPTION, limit=1000) is not None


def refused_for_now(stubber: Stubber, code: str) -> None:
    """A single-item write refused as DynamoDB refuses one for now: a transaction holds the item, or throttling
    that outlasted botocore's own tries."""
    stubber.add_client_error("update_item", service_error_code=code, service_message="refused for now")


@pytest.mark.parametrize(
    "code", ["TransactionConflictException", "ThrottlingException", "ProvisionedThroughputExceededException"]
)
def test_a_failing_run_s_start_refused_for_now_is_made_on_the_next_try_and_moves_no_version(
    stubbed: tuple[DynamoSubscriptionStore, Stubber], code: str
) -> None:
    # One single-item write (the Stubber refuses any other call): delivery makes it from many containers
    # at once, and a version moved by it made every container re-read the team (issue 23).
    store, stubber = stubbed
    refused_for_now(stubber, code)
    stored = item_of(SUBSCRIPTION, failing_since="2026-03-02T10:15:30.000Z", revision=2)
    stubber.add_response("update_item", {"Attributes": stored})
    written = store.set_failing_since(SUBSCRIPTION.team_id, SUBSCRIPTION.id, "2026-03-02T10:15:30.000Z")
    assert written is not None and written.failing_since == "2026-03-02T10:15:30.000Z"


def test_a_health_write_refused_at_every_try_is_unavailable(stubbed: tuple[DynamoSubscriptionStore, Stubber]) -> None:
    store, stubber = stubbed
    for _ in range(ATTEMPTS):
        refused_for_now(stubber, "TransactionConflictException")
    with pytest.raises(Unavailable):
        store.set_failing_since(SUBSCRIPTION.team_id, SUBSCRIPTION.id, None)


def test_a_failing_run_s_start_another_container_wrote_first_answers_with_the_stored_one(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    stubber.add_client_error(
        "update_item",
        "ConditionalCheckFailedException",
        "The conditional request failed",
        modeled_fields={"Item": item_of(SUBSCRIPTION, failing_since="2026-03-01T00:00:00.000Z")},
    )
    found = store.set_failing_since(SUBSCRIPTION.team_id, SUBSCRIPTION.id, "2026-03-02T10:15:30.000Z")
    assert found is not None and found.failing_since == "2026-03-01T00:00:00.000Z"


def test_a_team_item_that_another_transaction_holds_while_it_is_started_is_waited_for(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    stubber.add_response("batch_get_item", {"Responses": {"subscriptions": []}})  # stored before #team items
    stubber.add_response("query", {"Count": 0, "ScannedCount": 0, "Items": []})
    stubber.add_client_error("put_item", "TransactionConflictException", "Transaction is ongoing for the item")
    team_read(stubber)
    made(stubber)
    assert store.create(SUBSCRIPTION, limit=1000) is not None


def test_only_a_failed_condition_means_not_there(stubbed: tuple[DynamoSubscriptionStore, Stubber]) -> None:
    store, stubber = stubbed
    team_read(stubber)
    cancelled(stubber, "ConditionalCheckFailed", "None", "None")
    assert store.delete(SUBSCRIPTION.team_id, SUBSCRIPTION.id) is False
    team_read(stubber)
    cancelled(stubber, "ConditionalCheckFailed", "None", "None")
    assert store.replace(SUBSCRIPTION) is None


def test_a_write_cancelled_at_every_try_raises_unavailable_after_the_last(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    for _ in range(ATTEMPTS):
        team_read(stubber)
        cancelled(stubber, "None", "TransactionConflict", "None")
    with pytest.raises(Unavailable):
        store.create(SUBSCRIPTION, limit=1000)


def test_a_cancellation_for_a_fault_is_raised_not_read_as_an_answer(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    team_read(stubber)
    cancelled(stubber, "ValidationError", "None", "None")
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        store.delete(SUBSCRIPTION.team_id, SUBSCRIPTION.id)


def test_retries_pause_with_full_jitter_up_to_a_bound() -> None:
    pauses: list[float] = []
    retries = Retries(attempts=5, first_pause=0.1, max_pause=0.25, sleep=pauses.append, random=lambda: 1.0)
    assert list(retries) == [0, 1, 2, 3, 4]
    assert pauses == [0.1, 0.2, 0.25, 0.25]
    jittered: list[float] = []
    list(Retries(attempts=3, first_pause=0.1, max_pause=1, sleep=jittered.append, random=lambda: 0.5))
    assert jittered == [0.05, 0.1]


def throttled(code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "Rate of requests exceeds the allowed throughput."}}, "Query"
    )


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (Unavailable("DynamoDB kept cancelling the write"), HTTPStatus.SERVICE_UNAVAILABLE, "1"),
        (throttled("ThrottlingException"), HTTPStatus.SERVICE_UNAVAILABLE, "1"),
        (throttled("ProvisionedThroughputExceededException"), HTTPStatus.SERVICE_UNAVAILABLE, "1"),
        (throttled("ResourceNotFoundException"), HTTPStatus.INTERNAL_SERVER_ERROR, None),
        (RuntimeError("a bug"), HTTPStatus.INTERNAL_SERVER_ERROR, None),
    ],
)
def test_an_outage_is_503_with_retry_after_only_when_asking_again_will_do(
    error: Exception, status: HTTPStatus, retry_after: str | None
) -> None:
    problem = outage(error)
    assert problem.problem.status == status
    assert problem.headers.get("Retry-After") == retry_after
