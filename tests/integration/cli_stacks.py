"""Stacks for the CLI's tests, built from template.yaml's own resources.

A deployed stack: moto's CloudFormation creates the resources the CLI operates on, so the CLI finds
them by logical id as it would on AWS. The local stack: `hookrelay local up`'s resources in a moto
server on 127.0.0.1, reached with --local --aws-endpoint.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws
from moto.server import ThreadedMotoServer

from hookrelay.aws import Table, python_values
from hookrelay_cli.local.fair_queues import keep_queues_fair
from hookrelay_cli.local.resources import LocalResources, default_name
from hookrelay_cli.local.sqs_move_tasks import enable_message_move_tasks
from hookrelay_cli.local.stack import LOCAL_CREDENTIALS, LOCAL_STACK_NAME
from hookrelay_cli.template import Template
from paths import TEMPLATE

STACK = "hookrelay-prod"
# How `hookrelay local up` names the local stack's queues (the template's QueueName).
LOCAL_QUEUE_NAMES = {
    "DeliveryQueue": f"{LOCAL_STACK_NAME}-delivery",
    "SlowLaneQueue": f"{LOCAL_STACK_NAME}-delivery-slow",
    "DeliveryDeadLetterQueue": f"{LOCAL_STACK_NAME}-delivery-dlq",
    "EventsQueue": f"{LOCAL_STACK_NAME}-events",
    "EventsDeadLetterQueue": f"{LOCAL_STACK_NAME}-events-dlq",
    "EventBridgeDeadLetterQueue": f"{LOCAL_STACK_NAME}-eventbridge-dlq",
}
OPERATED = (
    "ApiKeysTable",
    "DeliveriesTable",
    "DeliveryQueue",
    "SlowLaneQueue",
    "DeliveryDeadLetterQueue",
    "EventsQueue",
    "EventsDeadLetterQueue",
    "EventBridgeDeadLetterQueue",
)
# What the API function's environment names besides, so that the deployed stack can have it.
API_FUNCTION_RESOURCES = ("SubscriptionsTable",)


@contextmanager
def deployed_stack() -> Iterator["StackResources"]:
    """Within mock_aws: the stack STACK with the template's tables and queues."""
    with mock_aws():
        template = Template.read(TEMPLATE)
        resources = {logical_id: template.resource(logical_id) for logical_id in OPERATED + API_FUNCTION_RESOURCES}
        body = {"Resources": {**resources, **_api_function(template)}}
        boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(body))
        yield StackResources(boto3.session.Session())


def _api_function(template: Template) -> dict[str, Any]:
    """The API function as CloudFormation deploys it, with the template's environment (its parameters at
    their defaults) and a stub for code: the CLI reads its settings from its configuration."""
    # moto's CloudFormation refers to an event bus by an object it cannot write out: a name instead.
    plain = {**template.parameter_defaults(), "EventBus": f"{STACK}-events"}
    variables = {
        name: plain[value["Ref"]] if isinstance(value, dict) and value.get("Ref") in plain else value
        for name, value in template.resource("ApiFunction")["Properties"]["Environment"]["Variables"].items()
    }
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    return {
        "ApiFunctionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}},
        },
        "ApiFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "app.handler",
                "Role": {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context): pass"},
                "Environment": {"Variables": variables},
            },
        },
    }


@contextmanager
def local_stack() -> Iterator["StackResources"]:
    """The local stack's resources in a moto server; its endpoint is `.endpoint_url`.

    mock_aws around it gives the server a fresh state and resets it afterwards. Its SQS runs message
    move tasks and is fair, as `local up`'s is (an EventBridge rule target's message group is the event's team).
    """
    enable_message_move_tasks()
    keep_queues_fair()
    with mock_aws():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            endpoint = "http://{}:{}".format(*server.get_host_and_port())
            session = boto3.session.Session(
                aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
            )
            local = StackResources(session, endpoint)
            LocalResources(Template.read(TEMPLATE), LOCAL_STACK_NAME, local.client).provision()
            yield local
        finally:
            server.stop()


class StackResources:
    """Reads a stack's resources independently of the CLI's own resolution."""

    def __init__(self, session: boto3.session.Session, endpoint_url: str | None = None):
        self.session = session
        self.endpoint_url = endpoint_url

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def target_arguments(self) -> list[str]:
        return ["--local", "--aws-endpoint", self.endpoint_url] if self.endpoint_url else ["--stack", STACK]

    def _name(self, logical_id: str) -> str:
        if self.endpoint_url:
            return LOCAL_QUEUE_NAMES.get(logical_id) or default_name(LOCAL_STACK_NAME, logical_id)
        detail = self.client("cloudformation").describe_stack_resource(StackName=STACK, LogicalResourceId=logical_id)
        return str(detail["StackResourceDetail"]["PhysicalResourceId"])

    def table(self, logical_id: str) -> Table:
        return Table(self._name(logical_id), python_values(self.client("dynamodb")))

    def queue_url(self, logical_id: str) -> str:
        name = self._name(logical_id)
        return (
            name if name.startswith("https://") else str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        )

    def queue_arn(self, logical_id: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(logical_id), AttributeNames=["QueueArn"]
        )
        return str(attributes["Attributes"]["QueueArn"])

    def counts(self, logical_id: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def send(self, logical_id: str, *bodies: str, attributes: dict[str, str] | None = None) -> list[str]:
        """Messages with these bodies, each with these string message attributes."""
        url = self.queue_url(logical_id)
        message_attributes = {
            name: {"DataType": "String", "StringValue": value} for name, value in (attributes or {}).items()
        }
        return [
            self.client("sqs").send_message(QueueUrl=url, MessageBody=body, MessageAttributes=message_attributes)[
                "MessageId"
            ]
            for body in bodies
        ]

    def receive_all(self, logical_id: str) -> list[dict[str, Any]]:
        """Every message on a queue (body and message attributes), consumed."""
        sqs, url = self.client("sqs"), self.queue_url(logical_id)
        received: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        ):
            received.extend(messages)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return received

    def drain(self, logical_id: str) -> list[str]:
        """Every body on a queue, consumed."""
        return [message["Body"] for message in self.receive_all(logical_id)]
