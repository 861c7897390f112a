"""boto3 clients and tables, created once per process and shared by its threads."""

import functools
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from boto3.dynamodb.table import BatchWriter
from boto3.dynamodb.transform import TransformationInjector, copy_dynamodb_params
from botocore.config import Config

from hookrelay.settings import AwsCallLimits

if TYPE_CHECKING:
    # The boto3 type stubs (a development dependency): each client's calls and answers, as mypy checks them.
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

# Every thread of the largest pool that shares a client gets a connection of its own: the store's
# conditional writes (WRITE_CONCURRENCY, 16), above delivery's sends (SEND_CONCURRENCY, 10) and the
# sweeper's shards (SHARD_CONCURRENCY, 8); tests/unit/test_aws.py holds it to them. (Importing them
# here would cost the authorizer's cold start the delivery module's imports.)
MAX_POOL_CONNECTIONS = 16


_lock = threading.Lock()


@dataclass(frozen=True)
class Table:
    """A DynamoDB table spoken to in Python values and boto3's Key/Attr conditions, as boto3's resource
    Table is, through a client with the resource's transformations: a resource would load its model and
    make a client of its own at its first call, a cost every cold start paid."""

    name: str
    client: Any  # a DynamoDB client that speaks Python values (`python_values`)

    def get_item(self, **params: Any) -> Any:
        return self.client.get_item(TableName=self.name, **params)

    def put_item(self, **params: Any) -> Any:
        return self.client.put_item(TableName=self.name, **params)

    def update_item(self, **params: Any) -> Any:
        return self.client.update_item(TableName=self.name, **params)

    def delete_item(self, **params: Any) -> Any:
        return self.client.delete_item(TableName=self.name, **params)

    def query(self, **params: Any) -> Any:
        return self.client.query(TableName=self.name, **params)

    def scan(self, **params: Any) -> Any:
        return self.client.scan(TableName=self.name, **params)

    def batch_writer(self) -> BatchWriter:
        return BatchWriter(self.name, self.client)


def python_values(dynamodb: Any) -> Any:
    """The DynamoDB client `dynamodb`, taught Python values and boto3 conditions: boto3's own handlers,
    registered as its DynamoDB resource registers them on the resource's client."""
    injector = TransformationInjector()
    events = dynamodb.meta.events
    events.register("provide-client-params.dynamodb", copy_dynamodb_params, unique_id="dynamodb-create-params-copy")
    events.register(
        "before-parameter-build.dynamodb", _inject_condition_expressions, unique_id="dynamodb-condition-expression"
    )
    events.register(
        "before-parameter-build.dynamodb", injector.inject_attribute_value_input, unique_id="dynamodb-attr-value-input"
    )
    events.register(
        "after-call.dynamodb", injector.inject_attribute_value_output, unique_id="dynamodb-attr-value-output"
    )
    return dynamodb


def _inject_condition_expressions(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
    """boto3's condition transformation, with an injector of its own for each call: an injector's builder
    numbers the placeholders (#n0, :v0) with counters it resets at every call, so threads sharing one could
    give two attributes of one condition the same placeholder, and the write would test the wrong one."""
    TransformationInjector().inject_condition_expressions(params, model, **kwargs)


@functools.cache
def session() -> boto3.session.Session:
    """The process's one session; hooks registered on its events reach every client made after."""
    return boto3.session.Session()


@overload
def client(service: Literal["dynamodb"]) -> "DynamoDBClient": ...
@overload
def client(service: Literal["events"]) -> "EventBridgeClient": ...
@overload
def client(service: Literal["sqs"]) -> "SQSClient": ...
def client(service: str) -> Any:
    """The process's plain client of `service`: DynamoDB's speaks typed AttributeValues ({"S": ...})."""
    with _lock:
        return _client(service)


def table(name: str) -> Table:
    with _lock:
        return Table(name, _tables_client())


@functools.cache
def _client(service: str) -> Any:
    return _shared(session().client(service, config=_config()))  # type: ignore[call-overload]


@functools.cache
def _tables_client() -> Any:
    # A client of its own: the transformations would break the plain client's typed AttributeValues.
    return python_values(_shared(session().client("dynamodb", config=_config())))


def _shared(aws_client: Any) -> Any:
    """`aws_client` ready for threads: botocore makes a client's exception classes at their first use,
    unguarded, so two threads failing at once could each make their own, and an `except
    client.exceptions.X` of one would miss the other's X (a TransactionCanceledException escaped the
    subscriptions store that way, in a delivery container with ten sends)."""
    aws_client.exceptions  # noqa: B018 - made here, once
    return aws_client


def _config() -> Config:
    """Every call ends within AwsCallLimits.worst_call_seconds, not botocore's 60 s connect and read
    timeouts times its attempts; adaptive retries slow a client down while DynamoDB or SQS throttle it."""
    limits = AwsCallLimits.from_environment(os.environ)
    return Config(
        max_pool_connections=MAX_POOL_CONNECTIONS,
        connect_timeout=limits.connect_timeout_seconds,
        read_timeout=limits.read_timeout_seconds,
        retries={"mode": "adaptive", "total_max_attempts": limits.attempts},
    )
