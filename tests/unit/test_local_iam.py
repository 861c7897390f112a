"""Which IAM action on which resource ARN each AWS call of hookrelay needs (local.iam)."""

from typing import Any

import pytest

from hookrelay_cli.local.iam import Access, required_access

TABLES = "arn:aws:dynamodb:eu-west-3:123456789012:table/"


def needed(service: str, operation: str, **params: Any) -> list[Access]:
    return required_access(service, operation, params, "eu-west-3", "123456789012")


def test_a_table_call_needs_its_action_on_the_table_or_its_index() -> None:
    assert needed("dynamodb", "GetItem", TableName="subs") == [Access("dynamodb:GetItem", TABLES + "subs")]
    assert needed("dynamodb", "Query", TableName="deliveries", IndexName="due_retries") == [
        Access("dynamodb:Query", TABLES + "deliveries/index/due_retries")
    ]


def test_transactions_and_batches_need_every_table_they_touch() -> None:
    transaction = needed(
        "dynamodb",
        "TransactWriteItems",
        TransactItems=[
            {"Put": {"TableName": "a"}},
            {"Update": {"TableName": "b"}},
            {"ConditionCheck": {"TableName": "c"}},
        ],
    )
    # IAM has no TransactWriteItems action: each item needs its own.
    assert transaction == [
        Access("dynamodb:PutItem", TABLES + "a"),
        Access("dynamodb:UpdateItem", TABLES + "b"),
        Access("dynamodb:ConditionCheckItem", TABLES + "c"),
    ]
    assert needed("dynamodb", "BatchGetItem", RequestItems={"a": {}, "b": {}}) == [
        Access("dynamodb:BatchGetItem", TABLES + "a"),
        Access("dynamodb:BatchGetItem", TABLES + "b"),
    ]


@pytest.mark.parametrize(
    ("operation", "action"), [("SendMessageBatch", "sqs:SendMessage"), ("ReceiveMessage", "sqs:ReceiveMessage")]
)
def test_a_queue_call_needs_its_action_on_the_queue_of_its_url(operation: str, action: str) -> None:
    url = "http://127.0.0.1:5000/123456789012/hookrelay-local-delivery"
    assert needed("sqs", operation, QueueUrl=url) == [
        Access(action, "arn:aws:sqs:eu-west-3:123456789012:hookrelay-local-delivery")
    ]


def test_put_events_needs_every_bus_it_puts_on() -> None:
    other_bus = "arn:aws:events:eu-west-3:999999999999:event-bus/shared"
    entries = [{"EventBusName": "hookrelay-events"}, {}, {"EventBusName": other_bus}]
    assert needed("events", "PutEvents", Entries=entries) == [
        Access("events:PutEvents", other_bus),
        Access("events:PutEvents", "arn:aws:events:eu-west-3:123456789012:event-bus/default"),
        Access("events:PutEvents", "arn:aws:events:eu-west-3:123456789012:event-bus/hookrelay-events"),
    ]


def test_calls_without_a_resource_need_their_action_on_everything() -> None:
    assert needed("dynamodb", "ListTables") == [Access("dynamodb:ListTables", "*")]
    assert needed("sts", "GetCallerIdentity") == []
