"""The local stack's resources as `hookrelay local up` creates them from the translated template: queue
policies, log groups, and the bus rule's path to the events queue."""

import json
from typing import Any

from hookrelay_cli.local.stack import LOCAL_STACK_NAME
from integration.cli_stacks import local_stack

FUNCTIONS = ("ApiFunction", "AuthorizerFunction", "DeliveryFunction", "IngestFunction", "SweeperFunction")


def test_the_rule_may_send_to_the_events_queue_and_its_own_dlq_only() -> None:
    with local_stack() as local:
        sqs = local.client("sqs")
        rule_arn = local.client("events").describe_rule(
            Name=f"{LOCAL_STACK_NAME}-EventsRule", EventBusName=f"{LOCAL_STACK_NAME}-events"
        )["Arn"]

        def policy(logical_id: str) -> dict[str, Any] | None:
            attributes = sqs.get_queue_attributes(QueueUrl=local.queue_url(logical_id), AttributeNames=["Policy"])
            found = attributes.get("Attributes", {}).get("Policy")
            return json.loads(found) if found else None

        for queue in ("EventsQueue", "EventBridgeDeadLetterQueue"):
            document = policy(queue)
            assert document is not None, queue
            (statement,) = document["Statement"]
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
            assert local.queue_arn(queue) in statement["Resource"]
        assert policy("EventsDeadLetterQueue") is None and policy("DeliveryDeadLetterQueue") is None


def test_each_function_has_its_log_group_kept_30_days() -> None:
    with local_stack() as local:
        groups = local.client("logs").describe_log_groups()["logGroups"]
        assert {group["logGroupName"]: group.get("retentionInDays") for group in groups} == {
            f"/aws/lambda/{LOCAL_STACK_NAME}/{function}": 30 for function in FUNCTIONS
        }


def test_an_event_on_the_bus_reaches_the_events_queue_whole() -> None:
    with local_stack() as local:
        detail = {"event": {"event_id": "e-1", "event_name": "signer.done"}}
        local.client("events").put_events(
            Entries=[
                {
                    "Source": "hookrelay",
                    "DetailType": "signer.done",
                    "Detail": json.dumps(detail),
                    "EventBusName": f"{LOCAL_STACK_NAME}-events",
                }
            ]
        )
        (body,) = local.drain("EventsQueue")
        assert json.loads(body)["detail"] == detail
