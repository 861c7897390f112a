"""DynamoDB in the local stack as strict as AWS where moto is kinder and hookrelay could notice.

The rules that need a setting are one value, DynamoDBRules, read from HOOKRELAY_LOCAL_* variables:
all off unless set (the moto-based tests turn on what each shows, see `dynamodb_rules`); `local up`
and `local invoke` start from AS_ON_AWS: reads lag, transactions take time, partition keys have
limits (the index lag stays off unless set, as before).

- Eventually consistent reads (HOOKRELAY_LOCAL_READ_LAG_MS): a GetItem, BatchGetItem, Query or Scan
  of a table (or of a local secondary index) without ConsistentRead answers with the table as it was
  N ms ago. Every write keeps the item as it was before the write, with the write's time, for N ms,
  and such a read takes the oldest version kept: the item before its first write of the last N ms, or
  no item if it was created since. The answer is a function of the writes and their times, so a test
  that waits gets the same answer each run. ConsistentRead, transactions and the conditions of writes
  see the latest.
- Global secondary indexes (HOOKRELAY_LOCAL_INDEX_LAG_MS): a query of one does not see the items
  written or changed in the last N ms (a new item is missing, a changed one too, where DynamoDB might
  still show its old version).
- Transaction conflicts: moto answers one request at a time, so a transaction is never in progress
  when another arrives. Here one is: a TransactWriteItems takes HOOKRELAY_LOCAL_TRANSACTION_MS from
  its start to its answer (whether it succeeds or fails a condition; the wait is outside the one-at-a-
  time lock), and holds its items until then. Another TransactWriteItems on one of them meanwhile is
  cancelled, TransactionCanceledException with the reason TransactionConflict for that item; a
  PutItem, UpdateItem or DeleteItem of one fails with TransactionConflictException, as DynamoDB
  answers both. A caller never conflicts with its own transaction, whose answer it has before it sends
  more; a transaction cancelled for a conflict is answered at once and holds nothing. Besides,
  HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE (0 to 1) of transactions are cancelled the same way at
  random, the reason on one of their items picked at random.
- Hot partition keys (HOOKRELAY_LOCAL_PARTITION_LIMIT_SCALE): one partition key value of a table or
  of a global secondary index serves 1 000 write units and 3 000 read units a second, times the scale.
  Units are counted as DynamoDB bills them: a write 1 per KB of the larger of the item before and
  after (a failed condition still pays), and 1 per KB of each index entry it writes or removes; a
  read 1 per 4 KB (GetItem of each item, Query of what it returns), half when eventually consistent;
  a transaction twice. Scans are not counted. A request is throttled while the units of the last
  second on one of its keys already reach the limit: on an on-demand table (PAY_PER_REQUEST)
  ThrottlingException, on a provisioned one ProvisionedThroughputExceededException, each with the
  ThrottlingReason `{Table|Index}{Read|Write}KeyRangeThroughputExceeded` and the ARN of the table or
  index (in the field botocore's model of each names so: `throttlingReasons`, `ThrottlingReasons`);
  a transaction is cancelled with the reason ThrottlingError (ProvisionedThroughputExceeded) on the
  hot item; a BatchGetItem or BatchWriteItem hands the hot keys back unprocessed, and is
  throttled only when all of them are hot. The SDKs retry throttling themselves, as on AWS.
- A query's ExclusiveStartKey must lie inside its key condition: DynamoDB refuses one that does not
  with a ValidationException; moto would start the page anywhere.
- A query reads the partition its key condition names, as DynamoDB does: moto reads and sorts the whole
  table for each one, so that a query's time grows with the table (a sweep of the deliveries table's
  index shards held the server for 150 ms once a noisy team had written 10 000 deliveries).
- Each request is atomic, one at a time: moto's server threads would otherwise read an item while
  another changes it (a query failing with "dictionary changed size during iteration", a condition
  checked on a half-written item), which the containers' parallel requests make frequent. The callers
  take turns (TakingTurns), each known by the app id in its User-Agent (each function container sets
  AWS_SDK_UA_APP_ID to its own name): on AWS one caller's burst of calls, on partitions of its own,
  delays nobody else's, while in arrival order a delivery batch's ten attempts recorded at once, from
  each of four containers, queued every other call behind forty. In turns a call waits for at most
  one call of each other caller with calls waiting. No limit of AWS's is any looser for it: throttling,
  conflicts and read lag are the rules above.

Hooks on moto's DynamoDB models and request handler, installed in the stack's DynamoDB server (a child
process, see local.moto_servers) and in the process of `mock_aws` (LocalStack.create).
"""

import copy
import json
import math
import os
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, cast

from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    DynamodbException,
    MockValidationException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import GlobalSecondaryIndex, SecondaryIndex, Table
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.responses import DynamoHandler

from hookrelay_cli.local.knobs import milliseconds, share

READ_LAG_VARIABLE = "HOOKRELAY_LOCAL_READ_LAG_MS"
INDEX_LAG_VARIABLE = "HOOKRELAY_LOCAL_INDEX_LAG_MS"
TRANSACTION_MS_VARIABLE = "HOOKRELAY_LOCAL_TRANSACTION_MS"
CONFLICT_RATE_VARIABLE = "HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE"
PARTITION_LIMIT_SCALE_VARIABLE = "HOOKRELAY_LOCAL_PARTITION_LIMIT_SCALE"
NO_PARTITION_LIMITS = "off"

OUTSIDE_QUERY_BOUNDARIES = "The provided starting key is outside query boundaries based on provided conditions"
TRANSACTION_CONFLICT = "Transaction is ongoing for the item"
ON_DEMAND_THROTTLED = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your"
    " table or index so please try again shortly. If exceptions persist, check if you have a hot key:"
    " https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)
ON_DEMAND_INDEX_THROTTLED = (
    "Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is"
    " automatically scaling your index so please try again shortly."
)
PROVISIONED_THROTTLED = (
    "The level of configured provisioned throughput for the table was exceeded. Consider increasing your"
    " provisioning level with the UpdateTable API."
)
PROVISIONED_INDEX_THROTTLED = (
    "The level of configured provisioned throughput for one or more global secondary indexes of the table was"
    " exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes"
    " with the UpdateTable API."
)
# What one partition key value serves a second (DynamoDB's partition limits), before the scale.
WRITE_UNITS_PER_KEY = 1000
READ_UNITS_PER_KEY = 3000
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
THROUGHPUT_WINDOW_SECONDS = 1.0


@dataclass(frozen=True)
class DynamoDBRules:
    read_lag_ms: int = 0
    index_lag_ms: int = 0
    # How long a TransactWriteItems takes, holding its items (0: transactions are never in progress).
    transaction_ms: int = 0
    transaction_conflict_rate: float = 0.0
    # What multiplies the partition limits (None: partition keys are never throttled).
    partition_limit_scale: float | None = None

    @classmethod
    def from_environment(
        cls, defaults: "DynamoDBRules | None" = None, environ: Mapping[str, str] = os.environ
    ) -> "DynamoDBRules":
        """The rules the HOOKRELAY_LOCAL_* variables set, `defaults` (else all off) for those unset;
        ValueError naming the variable for a value that is not one."""
        base = defaults or cls()

        def setting(variable: str, parse: Callable[[str, str], Any], default: Any) -> Any:
            text = environ.get(variable)
            return default if text is None else parse(variable, text)

        return cls(
            read_lag_ms=setting(READ_LAG_VARIABLE, milliseconds, base.read_lag_ms),
            index_lag_ms=setting(INDEX_LAG_VARIABLE, milliseconds, base.index_lag_ms),
            transaction_ms=setting(TRANSACTION_MS_VARIABLE, milliseconds, base.transaction_ms),
            transaction_conflict_rate=setting(CONFLICT_RATE_VARIABLE, share, base.transaction_conflict_rate),
            partition_limit_scale=setting(PARTITION_LIMIT_SCALE_VARIABLE, _scale, base.partition_limit_scale),
        )

    def environment(self) -> dict[str, str]:
        """The variables that give these rules (from_environment reads them back)."""
        scale = self.partition_limit_scale
        return {
            READ_LAG_VARIABLE: str(self.read_lag_ms),
            INDEX_LAG_VARIABLE: str(self.index_lag_ms),
            TRANSACTION_MS_VARIABLE: str(self.transaction_ms),
            CONFLICT_RATE_VARIABLE: str(self.transaction_conflict_rate),
            PARTITION_LIMIT_SCALE_VARIABLE: NO_PARTITION_LIMITS if scale is None else str(scale),
        }

    def to_json(self) -> str:
        return json.dumps({each.name: getattr(self, each.name) for each in fields(self)})

    @classmethod
    def from_json(cls, text: str) -> "DynamoDBRules":
        return cls(**json.loads(text))


# What `local up` and `local invoke` apply unless the environment says otherwise.
AS_ON_AWS = DynamoDBRules(read_lag_ms=200, transaction_ms=20, partition_limit_scale=1.0)


def _scale(variable: str, text: str) -> float | None:
    if text.strip() == NO_PARTITION_LIMITS:
        return None
    try:
        scale = float(text)
    except ValueError:
        scale = 0.0
    if not scale > 0.0 or math.isinf(scale):
        raise ValueError(f"{variable} must be a number above 0, or {NO_PARTITION_LIMITS!r}, not {text!r}")
    return scale


# An item's key in a table: (table name, partition key value, sort key value or None).
ItemKey = tuple[str, DynamoType, DynamoType | None]


@dataclass
class _TableState:
    """What the rules remember of one table's writes; kept on moto's Table, so that it goes with it
    (and a transaction moto rolls back restores it with the table's items)."""

    # When each item was last written (time.monotonic()), for the index lag.
    written_at: dict[tuple[DynamoType, DynamoType | None], float] = field(default_factory=dict)
    # For each key written within the read lag, oldest first: (time of the write, the item before it).
    versions: dict[tuple[DynamoType, DynamoType | None], deque[tuple[float, Item | None]]] = field(default_factory=dict)
    # Every write that `versions` holds, in order, to forget them once older than the lag.
    writes: deque[tuple[float, tuple[DynamoType, DynamoType | None]]] = field(default_factory=deque)
    # For each attribute a global index is partitioned by: the keys of the items under each of its values,
    # built at the first query of such an index and kept by every write after.
    index_partitions: dict[str, dict[DynamoType, set[tuple[DynamoType, DynamoType | None]]]] = field(
        default_factory=dict
    )

    def forget_before(self, oldest: float) -> None:
        while self.writes and self.writes[0][0] < oldest:
            _, key = self.writes.popleft()
            versions = self.versions[key]
            versions.popleft()
            if not versions:
                del self.versions[key]

    def record(self, key: tuple[DynamoType, DynamoType | None], before: Item | None, lag_seconds: float) -> None:
        now = time.monotonic()
        self.forget_before(now - lag_seconds)
        self.versions.setdefault(key, deque()).append((now, before))
        self.writes.append((now, key))

    def partition_keys(
        self, table: Table, attribute: str, value: DynamoType
    ) -> set[tuple[DynamoType, DynamoType | None]]:
        """The keys of `table`'s items whose `attribute` is `value`."""
        partitions = self.index_partitions.get(attribute)
        if partitions is None:
            partitions = self.index_partitions[attribute] = {}
            for item in _Moto.all_items(table):
                if (found := item.attrs.get(attribute)) is not None:
                    partitions.setdefault(found, set()).add((item.hash_key, item.range_key))
        return partitions.get(value, set())

    def placement(self, item: Item | None) -> dict[str, DynamoType]:
        """Where `item` lies in the index partitions: its value of each attribute they are kept by (copies,
        as moto changes an item's values in place)."""
        if item is None:
            return {}
        return {
            attribute: copy.copy(value)
            for attribute in self.index_partitions
            if (value := item.attrs.get(attribute)) is not None
        }

    def reindex(self, key: tuple[DynamoType, DynamoType | None], was: dict[str, DynamoType], now: Item | None) -> None:
        """Move the item at `key` in the index partitions from `was` (its placement before a write) to where
        the item is now."""
        placed = self.placement(now)
        for attribute, partitions in self.index_partitions.items():
            before, after = was.get(attribute), placed.get(attribute)
            if before is not None and after is not None and before == after:
                continue
            if before is not None and (keys := partitions.get(before)) is not None:
                keys.discard(key)
                if not keys:
                    del partitions[before]
            if after is not None:
                partitions.setdefault(after, set()).add(key)


_STATE_ATTRIBUTE = "_hookrelay_rules"


def _state(table: Table) -> _TableState:
    state: _TableState | None = vars(table).get(_STATE_ATTRIBUTE)
    if state is None:
        state = _TableState()
        setattr(table, _STATE_ATTRIBUTE, state)
    return state


@dataclass(frozen=True)
class _Partition:
    """One partition key value of a table or of one of its global secondary indexes."""

    # The table's ARN: moto replaces a table it rolls a transaction back on with a copy.
    table_arn: str
    on_demand: bool
    index: str | None
    value: DynamoType

    @classmethod
    def of(cls, table: Table, index: str | None, value: DynamoType) -> "_Partition":
        return cls(table.table_arn, table.billing_mode == "PAY_PER_REQUEST", index, value)

    @property
    def resource(self) -> str:
        return f"{self.table_arn}/index/{self.index}" if self.index else self.table_arn

    def reason(self, kind: str) -> str:
        return f"{'Index' if self.index else 'Table'}{kind}KeyRangeThroughputExceeded"

    def message(self) -> str:
        if self.on_demand:
            return ON_DEMAND_INDEX_THROTTLED if self.index else ON_DEMAND_THROTTLED
        return PROVISIONED_INDEX_THROTTLED if self.index else PROVISIONED_THROTTLED


class _Throttled(DynamodbException):
    """What DynamoDB answers a request on a hot partition key."""

    def __init__(self, partition: _Partition, kind: str) -> None:
        # botocore's model of each exception names the reasons' field so.
        code, reasons = (
            ("ThrottlingException", "throttlingReasons")
            if partition.on_demand
            else ("ProvisionedThroughputExceededException", "ThrottlingReasons")
        )
        super().__init__(ERROR_TYPE_PREFIX + code, partition.message())
        self.description = json.dumps(
            {
                "__type": self.error_type,
                "message": self.message,
                reasons: [{"reason": partition.reason(kind), "resource": partition.resource}],
            }
        )


class _TransactionConflict(DynamodbException):
    def __init__(self) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "TransactionConflictException", TRANSACTION_CONFLICT)


@dataclass
class _Consumption:
    """Units consumed in the last second, by partition and kind ("Read" or "Write")."""

    units: dict[tuple[_Partition, str], deque[tuple[float, float]]] = field(default_factory=dict)
    # When the partitions of no recent units were last forgotten (each delivery is a partition of its own).
    swept_at: float = 0.0

    def used(self, partition: _Partition, kind: str, now: float) -> float:
        consumed = self.units.get((partition, kind))
        if not consumed:
            return 0.0
        while consumed and consumed[0][0] <= now - THROUGHPUT_WINDOW_SECONDS:
            consumed.popleft()
        return sum(units for _, units in consumed)

    def add(self, partition: _Partition, kind: str, units: float, now: float) -> None:
        self.units.setdefault((partition, kind), deque()).append((now, units))
        if now - self.swept_at > THROUGHPUT_WINDOW_SECONDS:
            self.swept_at = now
            since = now - THROUGHPUT_WINDOW_SECONDS
            for idle in [each for each, consumed in self.units.items() if not consumed or consumed[-1][0] <= since]:
                del self.units[idle]


class _Rules:
    current = DynamoDBRules()
    installed = False
    chance = random.Random()  # noqa: S311 - which transactions conflict, no secret
    # Until when (time.monotonic()) a transaction in progress holds each item.
    held_until: ClassVar[dict[ItemKey, float]] = {}
    consumption = _Consumption()
    # The tables the request in progress reads eventually consistently (requests come one at a time).
    lagged_tables: ClassVar[set[str]] = set()
    # The partition the query in progress reads.
    query_scope: ClassVar["_QueryScope | None"] = None

    @classmethod
    def limit(cls, kind: str) -> float | None:
        scale = cls.current.partition_limit_scale
        if scale is None:
            return None
        return (WRITE_UNITS_PER_KEY if kind == "Write" else READ_UNITS_PER_KEY) * scale

    @classmethod
    def hot(cls, partitions: list[_Partition], kind: str) -> _Partition | None:
        """The first of `partitions` whose units of the last second reach the limit, if any."""
        limit = cls.limit(kind)
        if limit is None:
            return None
        now = time.monotonic()
        return next((each for each in partitions if cls.consumption.used(each, kind, now) >= limit), None)

    @classmethod
    def consume(cls, costs: list[tuple[_Partition, float]], kind: str) -> None:
        if cls.limit(kind) is None:
            return
        now = time.monotonic()
        for partition, units in costs:
            cls.consumption.add(partition, kind, units, now)


def enforce_dynamodb_rules(rules: DynamoDBRules) -> None:
    """Make this process's moto DynamoDB follow `rules` (and check start keys), from now on."""
    _Rules.current = rules
    _Rules.held_until.clear()
    _Rules.consumption = _Consumption()
    if _Rules.installed:
        return
    _Rules.installed = True
    _install()


@contextmanager
def dynamodb_rules(rules: DynamoDBRules) -> Iterator[None]:
    """This process's moto DynamoDB under `rules` for the `with` block, then as before."""
    previous = _Rules.current
    enforce_dynamodb_rules(rules)
    try:
        yield
    finally:
        enforce_dynamodb_rules(previous)


class _Moto:
    """moto's own methods, which the hooks below call."""

    put_item = Table.put_item
    delete_item = Table.delete_item
    get_item = Table.get_item
    all_items = Table.all_items
    query = Table.query
    update_item = DynamoDBBackend.update_item
    call_action = DynamoHandler.call_action
    handle_get_item = DynamoHandler.get_item
    handle_batch_get_item = DynamoHandler.batch_get_item
    handle_query = DynamoHandler.query
    handle_scan = DynamoHandler.scan
    handle_put_item = DynamoHandler.put_item
    handle_update_item = DynamoHandler.update_item
    handle_delete_item = DynamoHandler.delete_item
    handle_batch_write_item = DynamoHandler.batch_write_item
    handle_transact_write_items = DynamoHandler.transact_write_items


class TakingTurns:
    """One call at a time, the callers taking turns: a caller's next call waits behind one call of each
    other caller that has calls waiting, not behind all the calls that came before it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        # Each caller's waiting calls, the callers in the order of their turns.
        self._waiting: OrderedDict[str, deque[threading.Event]] = OrderedDict()

    @contextmanager
    def turn(self, caller: str) -> Iterator[None]:
        with self._lock:
            waiting = None
            if self._busy:
                waiting = threading.Event()
                self._waiting.setdefault(caller, deque()).append(waiting)
            self._busy = True
        if waiting is not None:
            waiting.wait()
        try:
            yield
        finally:
            self._next_turn()

    def _next_turn(self) -> None:
        with self._lock:
            if not self._waiting:
                self._busy = False
                return
            caller, calls = self._waiting.popitem(last=False)
            if len(calls) > 1:
                self._waiting[caller] = calls  # to the back of the turns, for its next call
            calls.popleft().set()  # the lock passes to it: busy stays true


def caller_of(user_agent: str) -> str:
    """Who a request comes from: the app id of its User-Agent (`app/<id>`), or the whole of it."""
    app = next((part for part in user_agent.split() if part.startswith("app/")), None)
    return app or user_agent


def _install() -> None:
    turns = TakingTurns()

    def atomic_call_action(self: DynamoHandler) -> Any:
        try:
            with turns.turn(caller_of(self.headers.get("User-Agent", ""))):
                return _Moto.call_action(self)
        finally:
            _answer_when_done()

    Table.put_item = _kept_put_item  # type: ignore[method-assign]
    Table.delete_item = _kept_delete_item  # type: ignore[method-assign]
    Table.get_item = _lagged_get_item  # type: ignore[method-assign]
    Table.all_items = _lagged_all_items  # type: ignore[method-assign]
    Table.query = _strict_query  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _kept_update_item  # type: ignore[method-assign]
    DynamoHandler.call_action = atomic_call_action  # type: ignore[method-assign]
    DynamoHandler.get_item = _metered_get_item  # type: ignore[method-assign]
    DynamoHandler.batch_get_item = _metered_batch_get_item  # type: ignore[method-assign]
    DynamoHandler.query = _eventually(_Moto.handle_query)  # type: ignore[method-assign]
    DynamoHandler.scan = _eventually(_Moto.handle_scan)  # type: ignore[method-assign]
    DynamoHandler.put_item = _single_write(_Moto.handle_put_item, "Item")  # type: ignore[method-assign]
    DynamoHandler.update_item = _single_write(_Moto.handle_update_item, "Key")  # type: ignore[method-assign, assignment]
    DynamoHandler.delete_item = _single_write(_Moto.handle_delete_item, "Key")  # type: ignore[method-assign]
    DynamoHandler.batch_write_item = _metered_batch_write_item  # type: ignore[method-assign]
    DynamoHandler.transact_write_items = _contended_transact_write_items  # type: ignore[method-assign]


# The versions a write keeps (HOOKRELAY_LOCAL_READ_LAG_MS), and when it wrote (HOOKRELAY_LOCAL_INDEX_LAG_MS).


def _kept_put_item(self: Table, item_attrs: dict[str, Any], *arguments: Any, **keywords: Any) -> Item:
    key = _item_key(self, item_attrs)
    before = _Moto.get_item(self, *key) if key else None
    written: Item = _Moto.put_item(self, item_attrs, *arguments, **keywords)
    _written(self, (written.hash_key, written.range_key), before, _state(self).placement(before))
    return written


def _kept_delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    deleted: Item | None = _Moto.delete_item(self, hash_key, range_key)
    if deleted is not None:
        _written(self, (hash_key, range_key), deleted, _state(self).placement(deleted))
    return deleted


def _kept_update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *arguments: Any, **keywords: Any
) -> Item:
    table = self.get_table(table_name)
    item_key = _item_key(table, key)
    current = _Moto.get_item(table, *item_key) if item_key else None
    # moto changes the item in place.
    before = copy.deepcopy(current) if _Rules.current.read_lag_ms else None
    placement = _state(table).placement(current)
    updated: Item = _Moto.update_item(self, table_name, key, *arguments, **keywords)
    _written(table, (updated.hash_key, updated.range_key), before, placement)
    return updated


def _item_key(table: Table, attributes: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    """The key of the item `attributes` name, if they name one (else moto refuses the request)."""
    if table.hash_key_attr not in attributes or (table.range_key_attr and table.range_key_attr not in attributes):
        return None
    return DynamoType(attributes[table.hash_key_attr]), _range_value(table, attributes)


def _range_value(table: Table, attributes: dict[str, Any]) -> DynamoType | None:
    return DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None


def _written(
    table: Table, key: tuple[DynamoType, DynamoType | None], before: Item | None, placement: dict[str, DynamoType]
) -> None:
    """After a write of the item at `key`: `before` is the item before it, `placement` where it lay in the
    index partitions."""
    state = _state(table)
    if _Rules.current.index_lag_ms:
        state.written_at[key] = time.monotonic()
    if _Rules.current.read_lag_ms:
        state.record(key, before, _Rules.current.read_lag_ms / 1000)
    if state.index_partitions:
        state.reindex(key, placement, _Moto.get_item(table, *key))


# Reads as the table was HOOKRELAY_LOCAL_READ_LAG_MS ago, for the tables the request reads eventually.


def _eventually(handler: Callable[[DynamoHandler], ActionResult]) -> Callable[[DynamoHandler], ActionResult]:
    """`handler`, reading tables as they were HOOKRELAY_LOCAL_READ_LAG_MS ago unless the request
    asks for ConsistentRead."""

    def read(self: DynamoHandler) -> ActionResult:
        _Rules.lagged_tables = _lagged_tables(self.dynamodb_backend, self.body)
        try:
            return handler(self)
        finally:
            _Rules.lagged_tables = set()

    return read


def _lagged_tables(backend: DynamoDBBackend, body: dict[str, Any]) -> set[str]:
    """The tables a read request reads eventually consistently, if reads lag."""
    if not _Rules.current.read_lag_ms:
        return set()
    if "RequestItems" in body:
        requests = body["RequestItems"].items()
        return {backend.get_table(name).name for name, request in requests if not request.get("ConsistentRead")}
    index_name = body.get("IndexName")
    table = backend.get_table(body["TableName"])
    # A global secondary index lags as HOOKRELAY_LOCAL_INDEX_LAG_MS says.
    if body.get("ConsistentRead") or isinstance(_index(table, index_name), GlobalSecondaryIndex):
        return set()
    return {table.name}


def _as_it_was(table: Table) -> dict[tuple[DynamoType, DynamoType | None], deque[tuple[float, Item | None]]]:
    """The versions `table` keeps of the items written within the read lag."""
    state = _state(table)
    state.forget_before(time.monotonic() - _Rules.current.read_lag_ms / 1000)
    return state.versions


def _lagged_get_item(
    self: Table,
    hash_key: DynamoType,
    range_key: DynamoType | None = None,
    projection_expression: list[list[str]] | None = None,
) -> Item | None:
    latest: Item | None = _Moto.get_item(self, hash_key, range_key, projection_expression)
    if self.name not in _Rules.lagged_tables or not (versions := _as_it_was(self).get((hash_key, range_key))):
        return latest
    before = versions[0][1]
    return before.project(projection_expression) if before is not None and projection_expression else before


def _lagged_all_items(self: Table) -> list[Item]:
    """The table's items (as they were, for a lagged read); for a query, those of the partition it reads."""
    scope = _Rules.query_scope if _Rules.query_scope and _Rules.query_scope.table is self else None
    latest: list[Item] = scope.items() if scope else _Moto.all_items(self)
    if self.name not in _Rules.lagged_tables or not (kept := _as_it_was(self)):
        return latest
    items = {(item.hash_key, item.range_key): item for item in latest}
    for key, versions in kept.items():
        before = versions[0][1]
        if before is None:
            items.pop(key, None)
        else:
            items[key] = before
    if scope:
        # moto's query keeps its partition of these, and sorts them.
        return list(items.values())
    # moto's own order.
    return sorted(items.values(), key=lambda item: (item.hash_key, item.range_key) if item.range_key else item.hash_key)


@dataclass(frozen=True)
class _QueryScope:
    """The partition a query reads: the items of `table` whose `attribute` (the hash key of the table or of
    the global index queried) is `value`. moto would read, and sort, every item of the table for each query,
    which makes a query's time grow with the table, not with what it reads as on DynamoDB."""

    table: Table
    attribute: str
    value: DynamoType

    @classmethod
    def of(cls, table: Table, index: SecondaryIndex | None, hash_key: DynamoType | None) -> "_QueryScope | None":
        if hash_key is None:
            return None
        if not isinstance(index, GlobalSecondaryIndex):
            # A local index's partitions are the table's.
            return cls(table, table.hash_key_attr, hash_key)
        hashes = [part["AttributeName"] for part in index.schema if part["KeyType"] == "HASH"]
        return cls(table, hashes[0], hash_key) if len(hashes) == 1 else None

    def items(self) -> list[Item]:
        if self.attribute == self.table.hash_key_attr:
            partition = self.table.items.get(self.value)
            if partition is None:
                return []
            # moto keeps a hash-only table's items by hash key, a composite key's by hash key, then range key.
            return list(partition.values()) if self.table.range_key_attr else [cast(Item, partition)]
        keys = _state(self.table).partition_keys(self.table, self.attribute, self.value)
        return [item for key in keys if (item := _Moto.get_item(self.table, *key)) is not None]


def _strict_query(self: Table, *arguments: Any, **keywords: Any) -> tuple[list[Item], int, dict[str, Any] | None]:
    # moto's own positional order: hash_key, range_comparison, range_objs, limit,
    # exclusive_start_key, scan_index_forward, projection_expressions, index_name, consistent_read, ...
    hash_key, range_comparison, range_objs, _limit, start_key = arguments[:5]
    index_name = keywords.get("index_name") or (arguments[7] if len(arguments) > 7 else None)
    consistent = bool(keywords.get("consistent_read") or (len(arguments) > 8 and arguments[8]))
    index = _index(self, index_name)
    if index_name and index is None:
        return _Moto.query(self, *arguments, **keywords)  # which refuses an index the table does not have
    if start_key:
        _check_start_key(self, index, start_key, hash_key, (range_comparison, range_objs))
    global_index = index_name if isinstance(index, GlobalSecondaryIndex) else None
    partition = _Partition.of(self, global_index, hash_key) if hash_key is not None else None
    _refuse_hot([partition] if partition else [], "Read")
    _Rules.query_scope = _QueryScope.of(self, index, hash_key)
    try:
        items, scanned, last_key = _Moto.query(self, *arguments, **keywords)
    finally:
        _Rules.query_scope = None
    if partition:
        _Rules.consume([(partition, _read_units(sum(item.size() for item in items), consistent=consistent))], "Read")
    if global_index and _Rules.current.index_lag_ms:
        settled_before = time.monotonic() - _Rules.current.index_lag_ms / 1000
        written_at = _state(self).written_at
        items = [item for item in items if written_at.get((item.hash_key, item.range_key), 0.0) <= settled_before]
    return items, scanned, last_key


# Reads and writes metered by partition key (HOOKRELAY_LOCAL_PARTITION_LIMIT_SCALE); writes refused
# while a transaction holds their item (HOOKRELAY_LOCAL_TRANSACTION_MS).


def _index(table: Table, name: str | None) -> SecondaryIndex | None:
    """The table's index of that name; None for none (moto answers a query of an unknown one)."""
    return next((index for index in table.all_indexes() if index.name == name), None) if name else None


def _refuse_hot(partitions: list[_Partition], kind: str) -> None:
    if hot := _Rules.hot(partitions, kind):
        raise _Throttled(hot, kind)


def _metered_get_item(self: DynamoHandler) -> ActionResult:
    read = _eventually(_Moto.handle_get_item)
    if _Rules.limit("Read") is None or not (target := _target_of(self.dynamodb_backend, self.body, "Key")):
        return read(self)
    partition = _Partition.of(target.table(), None, target.hash_key)
    _refuse_hot([partition], "Read")
    result = read(self)
    item = target.item()
    consistent = bool(self.body.get("ConsistentRead"))
    _Rules.consume([(partition, _read_units(item.size() if item else 0, consistent=consistent))], "Read")
    return result


def _metered_batch_get_item(self: DynamoHandler) -> ActionResult:
    read = _eventually(_Moto.handle_batch_get_item)
    if _Rules.limit("Read") is None:
        return read(self)
    served: dict[str, Any] = {}
    unprocessed: dict[str, Any] = {}
    costs: list[tuple[_Partition, float]] = []
    first_hot = None
    for table_name, request in self.body["RequestItems"].items():
        for key in request["Keys"]:
            target = _target_of(self.dynamodb_backend, {"TableName": table_name, "Key": key}, "Key")
            partition = _Partition.of(target.table(), None, target.hash_key) if target else None
            hot = _Rules.hot([partition] if partition else [], "Read")
            first_hot = first_hot or hot
            (unprocessed if hot else served).setdefault(table_name, {**request, "Keys": []})["Keys"].append(key)
            if target and partition and not hot:
                item = target.item()
                consistent = bool(request.get("ConsistentRead"))
                costs.append((partition, _read_units(item.size() if item else 0, consistent=consistent)))
    if first_hot and not served:
        raise _Throttled(first_hot, "Read")
    self.body["RequestItems"] = served
    result = read(self)
    _Rules.consume(costs, "Read")
    answer: Any = result.result
    for table_name, request in unprocessed.items():
        answer["UnprocessedKeys"].setdefault(table_name, {**request, "Keys": []})["Keys"].extend(request["Keys"])
    return result


def _single_write(
    handler: Callable[[DynamoHandler], ActionResult], key_field: str
) -> Callable[[DynamoHandler], ActionResult]:
    """`handler` (of PutItem, UpdateItem or DeleteItem), refused while a transaction holds its item
    or its partition key is hot, its units counted."""

    def write(self: DynamoHandler) -> ActionResult:
        target = _target_of(self.dynamodb_backend, self.body, key_field)
        if not target:
            return handler(self)
        if _Rules.held_until.get(target.key, 0.0) > time.monotonic():
            raise _TransactionConflict()
        _refuse_hot(target.partitions(), "Write")
        with _metered([target], factor=1):
            return handler(self)

    return write


def _metered_batch_write_item(self: DynamoHandler) -> ActionResult:
    if _Rules.limit("Write") is None:
        return _Moto.handle_batch_write_item(self)  # type: ignore[no-any-return]
    served: dict[str, list[Any]] = {}
    unprocessed: dict[str, list[Any]] = {}
    targets: list[_Target] = []
    first_hot = None
    for table_name, requests in self.body["RequestItems"].items():
        for request in requests:
            ((kind, detail),) = request.items()
            key_field = "Item" if kind == "PutRequest" else "Key"
            target = _target_of(self.dynamodb_backend, {"TableName": table_name, **detail}, key_field)
            hot = _Rules.hot(target.partitions() if target else [], "Write")
            first_hot = first_hot or hot
            (unprocessed if hot else served).setdefault(table_name, []).append(request)
            if target and not hot:
                targets.append(target)
    if first_hot and not served:
        raise _Throttled(first_hot, "Write")
    self.body["RequestItems"] = served
    with _metered(targets, factor=1):
        result: ActionResult = _Moto.handle_batch_write_item(self)
    answer: Any = result.result
    answer["UnprocessedItems"] = unprocessed
    return result


def _contended_transact_write_items(self: DynamoHandler) -> ActionResult:
    now = time.monotonic()
    targets = [
        target
        for action in self.body["TransactItems"]
        for (kind, request) in action.items()
        if (target := _target_of(self.dynamodb_backend, request, "Item" if kind == "Put" else "Key"))
    ]
    if len(targets) != len(self.body["TransactItems"]):
        return _Moto.handle_transact_write_items(self)  # type: ignore[no-any-return]
    conflicts = [_Rules.held_until.get(target.key, 0.0) > now for target in targets]
    if targets and not any(conflicts) and _Rules.chance.random() < _Rules.current.transaction_conflict_rate:
        conflicts[_Rules.chance.randrange(len(targets))] = True
    if any(conflicts):
        raise TransactionCanceledException(
            [("TransactionConflict", TRANSACTION_CONFLICT, None) if each else (None, None, None) for each in conflicts]
        )
    hot = [_Rules.hot(target.partitions(), "Write") for target in targets]
    if any(hot):
        raise TransactionCanceledException(
            [(_throttled_reason(each), each.message(), None) if each else (None, None, None) for each in hot]
        )
    if _Rules.current.transaction_ms:
        for done in [key for key, until in _Rules.held_until.items() if until <= now]:
            del _Rules.held_until[done]
        _in_progress.until = now + _Rules.current.transaction_ms / 1000
        for target in targets:
            _Rules.held_until[target.key] = _in_progress.until
    with _metered(targets, factor=2):
        return _Moto.handle_transact_write_items(self)  # type: ignore[no-any-return]


# Until when (time.monotonic()) the request this thread serves is in progress: its answer waits.
_in_progress = threading.local()


def _answer_when_done() -> None:
    until: float | None = getattr(_in_progress, "until", None)
    if until is not None:
        _in_progress.until = None
        time.sleep(max(0.0, until - time.monotonic()))


def _read_units(size: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units if consistent else units / 2


def _throttled_reason(partition: _Partition) -> str:
    return "ThrottlingError" if partition.on_demand else "ProvisionedThroughputExceeded"


@dataclass(frozen=True)
class _IndexEntry:
    index: str
    partition: DynamoType
    attributes: dict[str, DynamoType]

    @property
    def size(self) -> int:
        return sum(bytesize(name) + value.size() for name, value in self.attributes.items())


def _index_entry(index: SecondaryIndex, item: Item) -> _IndexEntry | None:
    """What `index` holds of `item`, if it holds it."""
    if not all(name in item.attrs for name in index.schema_key_attrs):
        return None
    projection = index.projection.get("ProjectionType", "ALL") if index.projection else "ALL"
    wanted = set(index.table_key_attrs) | set(index.schema_key_attrs)
    if projection == "INCLUDE":
        wanted |= set(index.projection.get("NonKeyAttributes", []))
    attributes = {name: value for name, value in item.attrs.items() if projection == "ALL" or name in wanted}
    (hash_name,) = [part["AttributeName"] for part in index.schema if part["KeyType"] == "HASH"]
    return _IndexEntry(index.name, item.attrs[hash_name], attributes)


@dataclass(frozen=True)
class _Footprint:
    """What an item weighs where a write of it is billed: in its table, and in each global index."""

    size: int
    entries: dict[str, _IndexEntry | None]


@dataclass(frozen=True)
class _Target:
    """The item a request reads or writes, and where its units go."""

    backend: DynamoDBBackend
    table_name: str
    hash_key: DynamoType
    range_key: DynamoType | None
    # The item a put writes (its index entries may be new).
    put: dict[str, Any] | None = None

    @property
    def key(self) -> ItemKey:
        return (self.table_name, self.hash_key, self.range_key)

    def table(self) -> Table:
        # Looked up each time: a transaction that moto rolls back puts a copy of the table in its place.
        return self.backend.get_table(self.table_name)

    def item(self) -> Item | None:
        return _Moto.get_item(self.table(), self.hash_key, self.range_key)  # type: ignore[no-any-return]

    def footprint(self) -> _Footprint:
        table, item = self.table(), self.item()
        entries = {index.name: _index_entry(index, item) if item else None for index in table.global_indexes}
        return _Footprint(item.size() if item else 0, entries)

    def partitions(self) -> list[_Partition]:
        """The table's partition of the item, and the index partitions of its index entries (those
        of the item a put writes too)."""
        if _Rules.current.partition_limit_scale is None:
            return []
        table = self.table()
        items = [self.item(), Item(self.hash_key, self.range_key, self.put) if self.put else None]
        indexes = {
            _Partition.of(table, entry.index, entry.partition)
            for each in filter(None, items)
            for index in table.global_indexes
            if (entry := _index_entry(index, each))
        }
        return [_Partition.of(table, None, self.hash_key), *indexes]

    def costs(self, before: _Footprint, after: _Footprint, factor: int) -> list[tuple[_Partition, float]]:
        """The write units of changing the item from `before` to `after` (the same if it failed)."""
        table = self.table()
        units = factor * max(1, math.ceil(max(before.size, after.size) / WRITE_UNIT_BYTES))
        costs = [(_Partition.of(table, None, self.hash_key), float(units))]
        for name in before.entries.keys() | after.entries.keys():
            old, new = before.entries.get(name), after.entries.get(name)
            if old == new:
                continue
            removed = old if old and (not new or old.partition != new.partition) else None
            for entry in filter(None, (new, removed)):
                index_units = factor * max(1, math.ceil(entry.size / WRITE_UNIT_BYTES))
                costs.append((_Partition.of(table, name, entry.partition), float(index_units)))
        return costs


@contextmanager
def _metered(targets: list[_Target], factor: int) -> Iterator[None]:
    """Count the write units of `targets` as the block leaves them, whether it succeeded or not."""
    if _Rules.current.partition_limit_scale is None:
        yield
        return
    before = [target.footprint() for target in targets]
    try:
        yield
    finally:
        for target, footprint in zip(targets, before, strict=True):
            _Rules.consume(target.costs(footprint, target.footprint(), factor), "Write")


def _target_of(backend: DynamoDBBackend, request: dict[str, Any], key_field: str) -> _Target | None:
    """The item a request names in `key_field` (None if it names none: moto refuses it)."""
    table = backend.get_table(request["TableName"])
    key = _item_key(table, request.get(key_field) or {})
    put = request["Item"] if key_field == "Item" else None
    return _Target(backend, table.name, *key, put) if key else None


def _check_start_key(
    table: Table,
    index: SecondaryIndex | None,
    start_key: dict[str, Any],
    hash_key: DynamoType | None,
    range_condition: tuple[str | None, list[DynamoType]],
) -> None:
    range_comparison, range_objs = range_condition
    schema = index.schema if index else table.schema
    key = {part["KeyType"]: part["AttributeName"] for part in schema}
    partition = start_key.get(key["HASH"])
    if hash_key is not None and (partition is None or DynamoType(partition) != hash_key):
        raise MockValidationException(OUTSIDE_QUERY_BOUNDARIES)
    sort = start_key.get(key.get("RANGE", ""))
    if range_comparison and sort is not None and not DynamoType(sort).compare(range_comparison, range_objs):
        raise MockValidationException(OUTSIDE_QUERY_BOUNDARIES)
