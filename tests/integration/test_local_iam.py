"""IAM per function: each function, loaded as a container of its own, runs with only its role's permissions.

Every function's clients come from a boto3 session of its own with `enforce_iam` installed (as the
container process of the local stack does), so each AWS call is checked against the function's role
in the translated template before it reaches moto.
"""

import io
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from receivers import Answer, receiver
from records import receiver_endpoint

import hookrelay.aws
from api_client import ApiClient
from hookrelay.api_keys import issue_key
from hookrelay.observability import logger
from hookrelay.settings import get_settings
from hookrelay.slow_answers import SLOW_ANSWER_MS
from hookrelay.store.api_keys import DynamoApiKeyStore
from hookrelay_cli.local.functions import LocalFunction
from hookrelay_cli.local.gateway import HttpRequest
from hookrelay_cli.local.iam import Access, enforce_iam, function_permissions, iam_enforced, required_access
from hookrelay_cli.local.stack import LocalStack
from integration.test_delivery_log import add_delivery
from integration.test_local_pollers import delivery_pollers, queued_delivery
from integration.test_sweeper import scheduled_delivery
from paths import REPO, TEMPLATE

Attempts = dict[str, list[Access]]


def enforced(stack: LocalStack, function_id: str, attempts: Attempts) -> LocalFunction:
    """The function loaded with clients of its own session, checked against its role; what it asks
    for is recorded in `attempts`, allowed or not."""
    permissions = function_permissions(stack.template, stack.resources, function_id)
    session = boto3.session.Session()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.signing_name
        needed = required_access(service, model.name, params, permissions.region, permissions.account_id)
        attempts[function_id].extend(needed)

    session.events.register("before-parameter-build", record)
    enforce_iam(session, permissions)
    function = LocalFunction(stack.template.function(function_id))
    # The handler module makes its clients when it loads, from hookrelay.aws's session.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hookrelay.aws, "session", lambda: session)
        hookrelay.aws._client.cache_clear()
        hookrelay.aws._tables_client.cache_clear()
        function._load()
    hookrelay.aws._client.cache_clear()
    hookrelay.aws._tables_client.cache_clear()
    return function


@pytest.fixture
def attempts(to_localhost: LocalStack) -> Attempts:
    """Every function of the stack replaced by its enforced container."""
    recorded: Attempts = defaultdict(list)
    to_localhost.functions = {
        function_id: enforced(to_localhost, function_id, recorded)
        for function_id in to_localhost.template.function_ids()
    }
    return recorded


def denied(stack: LocalStack, attempts: Attempts) -> dict[str, list[Access]]:
    refused = {}
    for function_id, accesses in attempts.items():
        permissions = function_permissions(stack.template, stack.resources, function_id)
        refused[function_id] = sorted({access for access in accesses if not permissions.allows(access)}, key=str)
    return {function_id: accesses for function_id, accesses in refused.items() if accesses}


def actions(attempts: Attempts, function_id: str) -> set[str]:
    return {access.action for access in attempts[function_id]}


def test_every_function_is_allowed_every_call_it_makes(
    attempts: Attempts, to_localhost: LocalStack, api: ApiClient, ingest: Any
) -> None:
    stack = to_localhost
    with receiver(lambda _: Answer(204, b"")) as server:
        created = api.post(
            "/v3/webhooks", {"endpoint": receiver_endpoint(server.port), "subscribed_events": ["signer.done"]}
        )
        assert created.status == 201, created.body
        base = f"/v3/webhooks/{created.json()['id']}"
        for response in (
            api.get("/v3/webhooks"),
            api.get(base),
            api.patch(base, {"description": "enforced"}),
            api.post(f"{base}/secret/rotate"),
            api.post("/v3/events", {"event_name": "signer.done", "data": {}}),
            api.post(f"{base}/test", {"event_name": "signer.done"}),
        ):
            assert response.status < 300, response.body
        portal_token = str(api.post("/v3/portal-sessions").json()["url"]).split("#token=", 1)[1]
        signed_out = api.delete("/v3/portal-sessions/current", key=portal_token)
        assert signed_out.status == 204, signed_out.body
        while ingest.poll_once():
            pass
        (deliverer,) = delivery_pollers(stack)
        while deliverer.poll_once():
            pass
        assert len(server.received) == 2
        deliveries = api.get(f"{base}/deliveries").json()["data"]
        assert len(deliveries) == 2
        timed_out = add_delivery(created.json(), "team-a", 60, "failed", latency_ms=SLOW_ANSWER_MS)
        for response in (
            api.get(f"{base}/deliveries/{deliveries[0]['id']}"),
            api.post(f"{base}/recover", {"since": "2020-01-01T00:00:00Z"}),  # to the slow lane
        ):
            assert response.status < 300, response.body
        assert api.get(f"{base}/deliveries/{timed_out.id}").json()["status"] == "pending"
        scheduled_delivery(1, due_in=-timedelta(minutes=1))
        scheduled_delivery(2, due_in=-timedelta(minutes=1), last_latency_ms=SLOW_ANSWER_MS)  # to the slow lane
        stack.invoke("SweeperFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
        assert api.delete(base).status == 204

    assert denied(stack, attempts) == {}
    assert {
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "events:PutEvents",
        "sqs:SendMessage",
    } <= actions(attempts, "ApiFunction")
    assert {"dynamodb:GetItem"} <= actions(attempts, "AuthorizerFunction")
    assert {"dynamodb:Query", "sqs:SendMessage"} <= actions(attempts, "IngestFunction")
    assert {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"} <= actions(attempts, "DeliveryFunction")
    assert {"dynamodb:Query", "sqs:SendMessage"} <= actions(attempts, "SweeperFunction")


DELIVERY_DELIVERIES_POLICY = """\
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref DeliveriesTable
        - DynamoDBCrudPolicy:
            TableName: !Ref SubscriptionsTable
        - SQSSendMessagePolicy:
            QueueName: !GetAtt DeliveryQueue.QueueName
        - SQSSendMessagePolicy:
            QueueName: !GetAtt SlowLaneQueue.QueueName
      Events:
        DeliveryQueue:
"""


def template_without_delivery_table_policy(folder: Path) -> Path:
    """A copy of template.yaml, in `folder`, whose delivery function may not use the deliveries table."""
    text = TEMPLATE.read_text()
    assert text.count(DELIVERY_DELIVERIES_POLICY) == 1
    removed = DELIVERY_DELIVERIES_POLICY.replace(
        "        - DynamoDBCrudPolicy:\n            TableName: !Ref DeliveriesTable\n", ""
    )
    (folder / "template.yaml").write_text(text.replace(DELIVERY_DELIVERIES_POLICY, removed))
    (folder / "functions").symlink_to(REPO / "functions")
    return folder / "template.yaml"


@pytest.fixture
def stack_without_delivery_table_policy(
    tmp_path: Path, restore_environment: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalStack]:
    """The local stack of a copy of template.yaml whose delivery function may not use the deliveries table."""
    template = template_without_delivery_table_policy(tmp_path)
    monkeypatch.setenv("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", "true")
    with mock_aws():
        get_settings.cache_clear()
        yield LocalStack.create(template, aws_endpoint="moto")
    get_settings.cache_clear()


def test_a_function_without_a_policy_it_needs_cannot_do_its_work(
    stack_without_delivery_table_policy: LocalStack,
) -> None:
    stack = stack_without_delivery_table_policy
    attempts: Attempts = defaultdict(list)
    stack.functions["DeliveryFunction"] = enforced(stack, "DeliveryFunction", attempts)
    table_arn = f"arn:aws:dynamodb:{stack.resources.region}:{stack.resources.account_id}:table/" + (
        get_settings().deliveries_table
    )
    with receiver(lambda _: Answer(204, b"")) as server:
        delivery_id = queued_delivery(server.port, "8c4bd4c4-0a3c-4c8e-9d43-1f1d6a3c9f11")
        (deliverer,) = delivery_pollers(stack)
        deliverer.poll_once()
        assert server.received == []

    # The delivery function's first call, reading the delivery, is refused; it sends nothing.
    assert denied(stack, attempts) == {"DeliveryFunction": [Access("dynamodb:BatchGetItem", table_arn)]}
    # The delivery stays pending and its message on the queue, for a retry once the role is fixed.
    item = hookrelay.aws.table(get_settings().deliveries_table).get_item(Key={"delivery_id": delivery_id})["Item"]
    assert item["status"] == "pending"


def test_a_refused_call_fails_as_on_aws_naming_function_action_and_resource(
    stack_without_delivery_table_policy: LocalStack,
) -> None:
    stack = stack_without_delivery_table_policy
    session = boto3.session.Session()
    enforce_iam(session, function_permissions(stack.template, stack.resources, "DeliveryFunction"))
    settings, account = get_settings(), stack.resources.account_id
    with pytest.raises(ClientError) as dynamodb_denied:
        session.client("dynamodb").get_item(TableName=settings.deliveries_table, Key={"delivery_id": {"S": "x"}})
    table_arn = f"arn:aws:dynamodb:{stack.resources.region}:{account}:table/{settings.deliveries_table}"
    assert dynamodb_denied.value.response["Error"] == {
        "Code": "AccessDeniedException",
        "Message": f"User: arn:aws:sts::{account}:assumed-role/hookrelay-local-DeliveryFunctionRole/"
        f"hookrelay-local-DeliveryFunction is not authorized to perform: dynamodb:GetItem on resource: {table_arn} "
        "because no identity-based policy allows the dynamodb:GetItem action",
    }
    # Allowed: the subscriptions table and the delivery queue.
    session.client("dynamodb").get_item(
        TableName=settings.subscriptions_table, Key={"team_id": {"S": "t"}, "subscription_id": {"S": "s"}}
    )
    session.client("sqs").send_message(QueueUrl=settings.delivery_queue_url, MessageBody="{}")
    with pytest.raises(ClientError) as sqs_denied:
        session.client("sqs").send_message(QueueUrl=settings.events_queue_url, MessageBody="{}")
    assert sqs_denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "sqs:SendMessage on resource: arn:aws:sqs:" in str(sqs_denied.value)
    with pytest.raises(ClientError, match="events:PutEvents"):
        session.client("events").put_events(
            Entries=[{"Source": "hookrelay", "DetailType": "x", "Detail": "{}", "EventBusName": settings.event_bus}]
        )


def test_the_switch_is_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKRELAY_LOCAL_IAM", raising=False)
    assert iam_enforced()
    monkeypatch.setenv("HOOKRELAY_LOCAL_IAM", "off")
    assert not iam_enforced()
    monkeypatch.setenv("HOOKRELAY_LOCAL_IAM", "maybe")
    with pytest.raises(ValueError, match="HOOKRELAY_LOCAL_IAM"):
        iam_enforced()


API_PUT_EVENTS_POLICY = """\
        - EventBridgePutEventsPolicy:
            EventBusName: !Ref EventBus
"""


@pytest.fixture
def stack_without_api_put_events(
    tmp_path: Path, restore_environment: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalStack]:
    """The local stack of a copy of template.yaml whose API function may not put events on the bus."""
    text = TEMPLATE.read_text()
    assert text.count(API_PUT_EVENTS_POLICY) == 1
    (tmp_path / "template.yaml").write_text(text.replace(API_PUT_EVENTS_POLICY, ""))
    (tmp_path / "functions").symlink_to(REPO / "functions")
    with mock_aws():
        get_settings.cache_clear()
        yield LocalStack.create(tmp_path / "template.yaml", aws_endpoint="moto")
    get_settings.cache_clear()


def test_an_aws_error_is_logged_once_with_its_operation_code_and_message_and_counted(
    stack_without_api_put_events: LocalStack, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the publish answered 503 "could not be published (ClientError)" and nothing logged why."""
    stack = stack_without_api_put_events
    attempts: Attempts = defaultdict(list)
    stack.functions["ApiFunction"] = enforced(stack, "ApiFunction", attempts)
    key = issue_key(DynamoApiKeyStore(hookrelay.aws.table(get_settings().api_keys_table)), "team-a").key
    gateway = stack.gateway()
    data = {"signer": {"info": {"first_name": "Event-data-never-logged"}}}
    body = json.dumps({"event_name": "signer.done", "data": data}).encode()
    headers = [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    capfd.readouterr()
    response = gateway.handle(HttpRequest("POST", "/v3/events", headers, body, "127.0.0.1"))
    assert response.status == 503, response.body

    output = logged.getvalue() + capfd.readouterr().out
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (error,) = [line for line in lines if line.get("level") == "ERROR"]
    assert error["message"] == "events not published"
    assert (error["aws_operation"], error["aws_error_code"]) == ("PutEvents", "AccessDeniedException")
    assert "is not authorized to perform: events:PutEvents" in error["aws_error_message"]
    assert "Traceback" not in output and "Event-data-never-logged" not in output and key not in output
    (counted,) = [line for line in lines if "AwsErrors" in line]
    assert counted["AwsErrors"] == [1.0] and counted["error_code"] == "AccessDeniedException"
