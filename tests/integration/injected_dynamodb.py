"""Two rules of DynamoDB that moto does not follow, injected for one test at the process's DynamoDB clients
(hookrelay.aws: what the in-process functions use):

- a TransactWriteItems may be cancelled with TransactionCanceledException and a `TransactionConflict`
  reason, in DynamoDB's words (at `conflict_rate`, or the next `conflicts` ones), as when another
  transaction holds one of its items, and a single-item write (UpdateItem) to a table that transactions
  write refused with TransactionConflictException at the same rate; and another write can be made to
  land just before the next transaction (`interleave`), as a concurrent request's would;
- a read without ConsistentRead (GetItem, a table's Query, BatchGetItem) does not see an item written
  less than `read_lag_seconds` ago (stricter than DynamoDB, which may show its previous version);
- reads of a partition over its throughput (`throttled_partitions`, partition key values) are refused
  with ProvisionedThroughputExceededException, as botocore raises it once its own tries are spent: a
  GetItem or Query of the partition, a BatchGetItem whose every key is in one (DynamoDB answers one
  with only some such keys by returning them unprocessed).

The answers are given before the request is made (botocore's before-call: moto never sees it), as
botocore would have parsed DynamoDB's. The local stack's own rules (issue 22) replace these once they
are in moto's classes.
"""

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from hookrelay import aws

CONFLICT = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
_WRITES = ("PutItem", "UpdateItem", "DeleteItem")
# What a before-call handler answers instead of the request: the HTTP response and its parsed body.
Answer = tuple[AWSResponse, dict[str, Any]]


def _answer(status: int, parsed: dict[str, Any]) -> Answer:
    metadata = {"RequestId": "injected", "HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}
    return AWSResponse("", status, {}, None), {**parsed, "ResponseMetadata": metadata}  # type: ignore[arg-type]


def cancelled_for_a_conflict(items: int) -> Answer:
    """DynamoDB's answer to a transaction of `items` items cancelled because another holds its last one."""
    reasons = [{"Code": "None"}] * (items - 1) + [CONFLICT]
    codes = ", ".join(reason["Code"] for reason in reasons)
    message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"
    error = {"Code": "TransactionCanceledException", "Message": message}
    return _answer(400, {"Error": error, "Message": message, "CancellationReasons": reasons})


def _plain(attributes: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Typed attribute values ({"S": "x"}) as comparable (name, value) pairs."""
    return tuple(sorted((name, json.dumps(value, sort_keys=True)) for name, value in attributes.items()))


class InjectedDynamoDB:
    def __init__(self, seed: int = 22) -> None:
        self.conflict_rate = 0.0
        self.conflicts = 0
        self.read_lag_seconds = 0.0
        self.throttled_partitions: set[str] = set()
        self.cancelled = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._between: Callable[[], object] | None = None
        self._written: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._key_names: dict[str, list[str]] = {}
        self._transacted_tables: set[str] = set()

    def interleave(self, write: Callable[[], object]) -> None:
        """Make `write` (another request's, through the same clients) just before the next transaction."""
        self._between = write

    @contextmanager
    def installed(self) -> Iterator["InjectedDynamoDB"]:
        clients = [aws.client("dynamodb"), aws.table("any").client]
        # Before-call handlers of an operation run before those of the service; the first answer is taken.
        handlers = [
            ("before-call.dynamodb.TransactWriteItems", self._before_transaction),
            ("before-call.dynamodb.GetItem", self._before_get),
            ("before-call.dynamodb.UpdateItem", self._before_update),
            ("before-call.dynamodb", self._before_call),
            ("before-call.dynamodb", self._before_read),
            ("after-call.dynamodb.Query", self._after_read),
            ("after-call.dynamodb.BatchGetItem", self._after_read),
        ]
        for client in clients:
            for event, handler in handlers:
                client.meta.events.register(event, handler, unique_id=f"injected-{event}-{handler.__name__}")
        try:
            yield self
        finally:
            for client in clients:
                for event, handler in handlers:
                    client.meta.events.unregister(event, handler, unique_id=f"injected-{event}-{handler.__name__}")

    def _key(self, table: str, attributes: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
        if table not in self._key_names:
            schema = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["KeySchema"]
            self._key_names[table] = [key["AttributeName"] for key in schema]
        return table, _plain({name: attributes[name] for name in self._key_names[table] if name in attributes})

    def _lagging(self, table: str, attributes: dict[str, Any]) -> bool:
        written = self._written.get(self._key(table, attributes))
        return written is not None and time.monotonic() - written < self.read_lag_seconds

    def _wrote(self, table: str, attributes: dict[str, Any]) -> None:
        self._written[self._key(table, attributes)] = time.monotonic()

    def _before_call(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        if model.name in _WRITES:
            self._wrote(body["TableName"], body.get("Key") or body["Item"])
        elif model.name == "TransactWriteItems":
            for item in body["TransactItems"]:
                ((kind, action),) = item.items()
                if kind != "ConditionCheck":
                    self._wrote(action["TableName"], action.get("Key") or action["Item"])
        elif model.name == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    put = request.get("PutRequest", {}).get("Item")
                    self._wrote(table, put or request["DeleteRequest"]["Key"])
        elif model.name == "Query" and not body.get("ConsistentRead") and "IndexName" not in body:
            context["lagged_tables"] = {body["TableName"]}
        elif model.name == "BatchGetItem":
            requests = body["RequestItems"].items()
            context["lagged_tables"] = {table for table, asked in requests if not asked.get("ConsistentRead")}

    # -> Answer | None (botocore's stubs type every handler as returning None).
    def _before_transaction(self, params: dict[str, Any], **_: Any) -> Any:
        between, self._between = self._between, None
        if between is not None:
            between()
        items = json.loads(params["body"])["TransactItems"]
        self._transacted_tables.update(action["TableName"] for item in items for action in item.values())
        if not self._conflicts():
            return None  # made, and recorded by _before_call
        return cancelled_for_a_conflict(len(items))

    def _before_update(self, params: dict[str, Any], **_: Any) -> Any:
        if json.loads(params["body"])["TableName"] not in self._transacted_tables or not self._conflicts():
            return None
        error = {"Code": "TransactionConflictException", "Message": "Transaction is ongoing for the item"}
        return _answer(400, {"Error": error, "Message": error["Message"]})

    def _conflicts(self) -> bool:
        with self._lock:
            conflict = self.conflicts > 0 or self._random.random() < self.conflict_rate
            self.conflicts = max(0, self.conflicts - 1)
            self.cancelled += conflict
        return conflict

    def _before_get(self, params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params["body"])
        if body.get("ConsistentRead") or not self._lagging(body["TableName"], body["Key"]):
            return None
        return _answer(200, {})

    def _before_read(self, params: dict[str, Any], model: Any, **_: Any) -> Any:
        if not self.throttled_partitions or model.name not in ("GetItem", "Query", "BatchGetItem"):
            return None
        body = json.loads(params["body"])
        throttled = [{"S": value} for value in self.throttled_partitions]
        if model.name == "Query":
            refused = any(value in throttled for value in body.get("ExpressionAttributeValues", {}).values())
        else:
            keys = (
                [body["Key"]]
                if model.name == "GetItem"
                else [key for asked in body["RequestItems"].values() for key in asked["Keys"]]
            )
            refused = all(any(value in throttled for value in key.values()) for key in keys)
        if not refused:
            return None
        error = {
            "Code": "ProvisionedThroughputExceededException",
            "Message": "The level of configured provisioned throughput for the table was exceeded.",
        }
        return _answer(400, {"Error": error, "Message": error["Message"]})

    def _after_read(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        tables = context.get("lagged_tables", set())
        if "Items" in parsed and tables:
            (table,) = tables
            parsed["Items"] = [item for item in parsed["Items"] if not self._lagging(table, item)]
            parsed["Count"] = len(parsed["Items"])
        for table, items in parsed.get("Responses", {}).items():
            if table in tables:
                items[:] = [item for item in items if not self._lagging(table, item)]
