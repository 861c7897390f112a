"""Subscription writes as DynamoDB answers them (botocore's Stubber): what each cancellation reason means."""

from collections.abc import Iterator
from http import HTTPStatus

import boto3
import pytest
import records
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from hookrelay.aws import Table, python_values
from hookrelay.errors import Unavailable
from hookrelay.http_api import outage
from hookrelay.store.retries import Retries
from hookrelay.store.subscriptions import DynamoSubscriptionStore

ATTEMPTS = 4
NO_PAUSE = Retries(attempts=ATTEMPTS, first_pause=0, max_pause=0, sleep=lambda _: None)
SUBSCRIPTION = records.subscription()


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


def test_a_create_and_a_delete_cancelled_for_a_conflict_are_made_on_the_next_try_not_refused(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    cancelled(stubber, "None", "TransactionConflict")
    made(stubber)
    assert store.create(SUBSCRIPTION, limit=1000) is not None
    cancelled(stubber, "TransactionConflict", "None")
    made(stubber)
    assert store.delete(SUBSCRIPTION.team_id, SUBSCRIPTION.id) is True


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded"])
def test_health_writes_cancelled_for_throttling_are_made_on_the_next_try(
    stubbed: tuple[DynamoSubscriptionStore, Stubber], reason: str
) -> None:
    store, stubber = stubbed
    cancelled(stubber, reason, "None")
    made(stubber)
    store.set_failing_since(SUBSCRIPTION.team_id, SUBSCRIPTION.id, "2026-03-02T10:15:30.000Z")
    cancelled(stubber, "None", reason)
    made(stubber)
    store.disable(SUBSCRIPTION.team_id, SUBSCRIPTION.id, "the endpoint answered 410 Gone", "2026-03-02T10:15:30.000Z")


def test_a_team_item_that_another_transaction_holds_while_it_is_started_is_waited_for(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    cancelled(stubber, "None", "ConditionalCheckFailed")  # a team stored before its #team item existed
    stubber.add_response("query", {"Count": 0, "ScannedCount": 0, "Items": []})
    stubber.add_client_error("put_item", "TransactionConflictException", "Transaction is ongoing for the item")
    made(stubber)
    assert store.create(SUBSCRIPTION, limit=1000) is not None


def test_only_a_failed_condition_means_not_there(stubbed: tuple[DynamoSubscriptionStore, Stubber]) -> None:
    store, stubber = stubbed
    cancelled(stubber, "ConditionalCheckFailed", "None")
    assert store.delete(SUBSCRIPTION.team_id, SUBSCRIPTION.id) is False
    cancelled(stubber, "ConditionalCheckFailed", "None")
    assert store.replace(SUBSCRIPTION) is None


def test_a_write_cancelled_at_every_try_raises_unavailable_after_the_last(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    for _ in range(ATTEMPTS):
        cancelled(stubber, "None", "TransactionConflict")
    with pytest.raises(Unavailable):
        store.create(SUBSCRIPTION, limit=1000)


def test_a_cancellation_for_a_fault_is_raised_not_read_as_an_answer(
    stubbed: tuple[DynamoSubscriptionStore, Stubber],
) -> None:
    store, stubber = stubbed
    cancelled(stubber, "ValidationError", "None")
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
