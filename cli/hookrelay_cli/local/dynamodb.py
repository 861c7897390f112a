"""DynamoDB in the local stack as strict as AWS where moto is kinder and hookrelay could notice.

- Global secondary indexes are eventually consistent: with HOOKRELAY_LOCAL_INDEX_LAG_MS, a query of
  one does not see the items written or changed in the last N ms (a new item is missing, a changed
  one too, where DynamoDB might still show its old version).
- A query's ExclusiveStartKey must lie inside its key condition: DynamoDB refuses one that does not
  with a ValidationException; moto would start the page anywhere.
- Each request is atomic, one at a time: moto's server threads would otherwise read an item while
  another changes it (a query failing with "dictionary changed size during iteration", a condition
  checked on a half-written item), which the containers' parallel requests make frequent.

Hooks on moto's DynamoDB models, installed in the stack's DynamoDB server (a child process, see
local.moto_servers) and in the process of `mock_aws`.
"""

import threading
import time
from typing import Any, ClassVar

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import GlobalSecondaryIndex, Table
from moto.dynamodb.responses import DynamoHandler

INDEX_LAG_VARIABLE = "HOOKRELAY_LOCAL_INDEX_LAG_MS"
OUTSIDE_QUERY_BOUNDARIES = "The provided starting key is outside query boundaries based on provided conditions"


class _Rules:
    index_lag_seconds = 0.0
    installed = False
    # When each item was last written (time.monotonic()), by (table, partition key, sort key): an
    # index query answers with projected copies of the items.
    written_at: ClassVar[dict[tuple[str, Any, Any], float]] = {}


def index_lag_millis(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{INDEX_LAG_VARIABLE} must be a whole number of milliseconds, not {text!r}")
    return int(text)


def enforce_dynamodb_rules(index_lag_ms: int) -> None:
    """Make this process's moto DynamoDB lag its indexes by `index_lag_ms` and check start keys."""
    _Rules.index_lag_seconds = index_lag_ms / 1000
    if _Rules.installed:
        return
    _Rules.installed = True
    put_item, update_item, query = Table.put_item, DynamoDBBackend.update_item, Table.query
    call_action, one_at_a_time = DynamoHandler.call_action, threading.Lock()

    def atomic_call_action(self: DynamoHandler) -> Any:
        with one_at_a_time:
            return call_action(self)

    def timed_put_item(self: Table, *arguments: Any, **keywords: Any) -> Item:
        return _written(self.name, put_item(self, *arguments, **keywords))

    def timed_update_item(self: DynamoDBBackend, table_name: str, *arguments: Any, **keywords: Any) -> Item:
        return _written(table_name, update_item(self, table_name, *arguments, **keywords))

    def strict_query(self: Table, *arguments: Any, **keywords: Any) -> tuple[list[Item], int, dict[str, Any] | None]:
        # moto's own positional order: hash_key, range_comparison, range_objs, limit,
        # exclusive_start_key, scan_index_forward, projection_expressions, index_name, ...
        hash_key, range_comparison, range_objs, _limit, start_key = arguments[:5]
        index_name = keywords.get("index_name") or (arguments[7] if len(arguments) > 7 else None)
        if start_key:
            _check_start_key(self, index_name, start_key, hash_key, (range_comparison, range_objs))
        items, scanned, last_key = query(self, *arguments, **keywords)
        if index_name and _Rules.index_lag_seconds and isinstance(self.get_index(index_name), GlobalSecondaryIndex):
            settled_before = time.monotonic() - _Rules.index_lag_seconds
            items = [
                item
                for item in items
                if _Rules.written_at.get((self.name, item.hash_key, item.range_key), 0.0) <= settled_before
            ]
        return items, scanned, last_key

    Table.put_item = timed_put_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = timed_update_item  # type: ignore[method-assign]
    Table.query = strict_query  # type: ignore[method-assign]
    DynamoHandler.call_action = atomic_call_action  # type: ignore[method-assign]


def _written(table_name: str, item: Item) -> Item:
    if _Rules.index_lag_seconds:
        _Rules.written_at[(table_name, item.hash_key, item.range_key)] = time.monotonic()
    return item


def _check_start_key(
    table: Table,
    index_name: str | None,
    start_key: dict[str, Any],
    hash_key: DynamoType | None,
    range_condition: tuple[str | None, list[DynamoType]],
) -> None:
    range_comparison, range_objs = range_condition
    schema = table.get_index(index_name).schema if index_name else table.schema
    key = {part["KeyType"]: part["AttributeName"] for part in schema}
    partition = start_key.get(key["HASH"])
    if hash_key is not None and (partition is None or DynamoType(partition) != hash_key):
        raise MockValidationException(OUTSIDE_QUERY_BOUNDARIES)
    sort = start_key.get(key.get("RANGE", ""))
    if range_comparison and sort is not None and not DynamoType(sort).compare(range_comparison, range_objs):
        raise MockValidationException(OUTSIDE_QUERY_BOUNDARIES)
