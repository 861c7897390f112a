"""events/'s queue samples (`sam local invoke -e`, `hookrelay local invoke -e`) are messages the current
code handles as intended, in a stack holding what they name: the ingest sample's event fans out to team
acme's subscription a delivery message of the shape the delivery sample has, and the delivery sample's
first attempt is sent. (tests/e2e/test_invoke.py invokes every sample in a fresh stack.)"""

import json
from typing import Any

import records
from receivers import receiver
from records import receiver_endpoint

from hookrelay import wiring
from hookrelay.aws import client, table
from hookrelay.records import delivery_id
from hookrelay.settings import get_settings
from hookrelay.store.delivery_log import DynamoDeliveryLogStore
from hookrelay_cli.local.stack import LocalStack
from integration.conftest import sample_event

# The first attempt records these from the fan-out that wrote the message: they differ run to run.
FAN_OUT_TIMES = ("created_at", "expires_at")


def sample_body(name: str) -> dict[str, Any]:
    (record,) = sample_event(name)["Records"]
    body: dict[str, Any] = json.loads(record["body"])
    return body


def without_fan_out_times(body: dict[str, Any]) -> dict[str, Any]:
    origin = {name: value for name, value in body["origin"].items() if name not in FAN_OUT_TIMES}
    return {**body, "origin": origin}


def test_the_ingest_sample_fans_out_the_delivery_sample_and_the_delivery_sample_is_sent(
    to_localhost: LocalStack,
) -> None:
    delivery_sample = sample_body("delivery-sqs-batch")
    origin = delivery_sample["origin"]
    event = sample_body("ingest-sqs-batch")["detail"]["event"]
    assert (origin["team_id"], origin["event_id"], origin["event_name"]) == (
        event["team_id"],
        event["event_id"],
        event["event_name"],
    )
    assert delivery_sample["delivery_id"] == delivery_id(event["event_id"], origin["subscription_id"])
    settings = get_settings()
    with receiver() as healthy:
        subscription = records.subscription(id=origin["subscription_id"], endpoint=receiver_endpoint(healthy.port))
        wiring.subscription_store(settings).create(subscription, records.TEAM_LIMIT)

        assert to_localhost.invoke("IngestFunction", sample_event("ingest-sqs-batch")) == {"batchItemFailures": []}

        (fanned_out,) = client("sqs").receive_message(QueueUrl=settings.delivery_queue_url).get("Messages", [])
        assert without_fan_out_times(json.loads(fanned_out["Body"])) == without_fan_out_times(delivery_sample)

        assert to_localhost.invoke("DeliveryFunction", sample_event("delivery-sqs-batch")) == {"batchItemFailures": []}

    (request,) = healthy.received
    assert request.headers["webhook-id"] == delivery_sample["delivery_id"]
    assert json.loads(request.body)["event_id"] == event["event_id"]
    delivery = DynamoDeliveryLogStore(table(settings.deliveries_table)).get(delivery_sample["delivery_id"])
    assert delivery is not None and (delivery.status, delivery.attempt_count) == ("delivered", 1)
