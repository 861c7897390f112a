"""moto at a cost that does not grow with what it holds, with the same answers, where the local stack's
throughput noticed (benchmarks/end_to_end.py):

- SQS reads its clock for every message it looks at (is it visible? delayed?), and a receive
  checked each message it hands out against its queue's retention period by building every
  attribute of the queue, three of which count its messages: a batch of 10 from a queue of 1 000
  took most of a second. SQS's clock is read as time.time() (moto's is the same value through
  datetime arithmetic, some 30 times slower), and the retention period from the queue itself.
- SQS built every attribute of a queue, three of which walk its messages to count them, where it
  reads one: a send (whether the queue deduplicates by content), GetQueueAttributes (twice per name
  asked). A send of 10 to a queue of 6 000 took 29 ms of the process's one interpreter. A queue's
  attributes are a mapping that builds each value when read, as moto builds it.
- An event on a bus was matched to its rule's targets by building a JSONPath parser (a yacc table)
  for every path of the target's input, event after event. Parsed paths are kept (a path's parse
  does not change).
- DynamoDB parsed an UpdateExpression twice per request and ran every check of it on every request,
  some quadratic in its clauses: a delivery record's attempt (some 20 actions) took 12 ms, which the
  stack's one-at-a-time DynamoDB made every other call wait for (P8). Parsed expressions are kept
  (moto validates and executes a deep copy of one, never the tree it parsed), and the checks that read
  only the expression, its attribute names and the table's keys (one action clause of each kind, no
  overlapping paths, no key updated) run once per such combination instead of once per request.
  Checks that read the item or the values still run each time, on a copy of the tree made from its
  pickle (moto deep-copies it, some 8 times slower), each check naming the node types it processes once
  per request (moto builds that tuple again at every node of the tree).

- moto's server chose each request's service by listing moto's package directory (a stat per
  service, some 150) to ask whether the host names one: a tenth of the DynamoDB server's time. The
  list is read once (the installed moto does not change while it runs).

Hooks on moto's models, which serve both the stack's in-process server and `mock_aws`.
"""

import functools
import gc
import json
import pickle
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import jsonpath_ng.ext
import moto.backends
import moto.dynamodb.models
import moto.dynamodb.parsing.ast_nodes
import moto.dynamodb.parsing.expressions
import moto.sqs.models
from moto.core.utils import camelcase_to_underscores
from moto.core.utils import unix_time as _moto_unix_time
from moto.dynamodb.parsing.validators import (
    ActionCountValidator,
    OverlappingPathsValidator,
    UpdateExpressionValidator,
    UpdateHashRangeKeyValidator,
)
from moto.sqs.models import Message, Queue, SQSBackend

# Module globals replaced at install (untyped here: their stubs say they are not re-exported).
_sqs_models: Any = moto.sqs.models
_jsonpath: Any = jsonpath_ng.ext
_dynamodb_models: Any = moto.dynamodb.models
_dynamodb_expressions: Any = moto.dynamodb.parsing.expressions
_dynamodb_ast_nodes: Any = moto.dynamodb.parsing.ast_nodes
_moto_backends: Any = moto.backends
_listed_moto_modules = moto.backends.list_of_moto_modules
# Distinct update expressions a process keeps parsed: hookrelay writes a few dozen.
PARSED_EXPRESSIONS_KEPT = 1024


@functools.cache  # installed once per process
def keep_moto_costs_flat() -> None:
    """Install the cheaper paths in this process's moto (once)."""
    _sqs_models.unix_time, _sqs_models.unix_time_millis = _unix_time, _unix_time_millis
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[method-assign]
    Queue.attributes = property(_QueueAttributes)  # type: ignore[assignment,method-assign]
    # moto's EventTemplateParser imports `parse` from the module at each call, so it finds this one.
    _jsonpath.parse = functools.lru_cache(maxsize=256)(_jsonpath.parse)
    parser = _dynamodb_expressions.UpdateExpressionParser
    parse_once: Any = functools.lru_cache(maxsize=PARSED_EXPRESSIONS_KEPT)(parser.make.__func__)
    parser.make = classmethod(parse_once)
    _dynamodb_models.UpdateExpressionValidator = _UpdateExpressionValidatorOnce
    _dynamodb_ast_nodes.DepthFirstTraverser.nodes_to_be_processed = _node_types_once
    _moto_backends.list_of_moto_modules = _moto_modules


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    return tuple(_listed_moto_modules())


@functools.cache  # installed once per process
def keep_collections_short() -> None:
    """After each full garbage collection of this process, its survivors leave the collector's
    generations (gc.freeze): the next full collection walks what the process made since, not all it
    holds. A stack serving A's thousands of messages and records paused its DynamoDB process for
    70-164 ms at each full collection, every call waiting. Only for the stack's server processes:
    objects still go when their last reference does, but a reference cycle among the survivors of a
    full collection is never collected once it is garbage (the stack's tables, queues, items and
    messages hold none)."""
    gc.collect()
    gc.freeze()  # the modules and the stack as started
    gc.callbacks.append(_freeze_after_full_collection)


def _freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def _unix_time(dt: datetime | None = None) -> float:
    return time.time() if dt is None else _moto_unix_time(dt)


def _unix_time_millis(dt: datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


def _within_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
    queue: Any = self.get_queue(queue_name)
    sent_millis: Any = message.sent_timestamp
    # moto's SQS clock, looked up at each call as its models do.
    now: float = _sqs_models.unix_time()
    return bool(int(queue.message_retention_period) + sent_millis / 1000 > now)


class _QueueAttributes(Mapping[str, Any]):
    """A queue's attributes as moto's Queue.attributes builds them, each value built when read."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        names = list(Queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += Queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:  # type: ignore[attr-defined]
            names += Queue.KMS_ATTRIBUTES
        self._names = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        queue: Any = self._queue
        if name == "RedrivePolicy" and queue.redrive_policy:
            return json.dumps(queue.redrive_policy)
        value = getattr(queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


# The checks of an update expression that read only its tree, its attribute names and its table's keys.
_CHECKS_OF_THE_TEXT = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)


@dataclass
class _ParsedUpdate:
    """What is known of one parsed update expression's tree."""

    pickled: bytes
    # The (attribute names, table keys) its text checks passed with.
    passed: set[tuple[frozenset[tuple[str, str]], tuple[str, ...]]] = field(default_factory=set)


class _UpdateExpressionValidatorOnce(UpdateExpressionValidator):  # type: ignore[misc]
    """moto's validator, working on a copy of the tree unpickled (moto deep-copies it, 8 times slower, for
    the same tree) and skipping the checks of the text that the same parsed tree passed before with the
    same attribute names and table keys (parsed trees are kept, so the same text is the same tree)."""

    _known: ClassVar["weakref.WeakKeyDictionary[Any, _ParsedUpdate]"] = weakref.WeakKeyDictionary()

    def __init__(self, expression: Any, **keywords: Any) -> None:
        super().__init__(None, **keywords)
        self._parsed = self._known.get(expression) or self._known.setdefault(
            expression, _ParsedUpdate(pickle.dumps(expression))
        )
        # Bytes this process pickled from a tree it parsed, never data from outside.
        self.node_to_validate = pickle.loads(self._parsed.pickled)  # noqa: S301
        self._context = (
            frozenset((self.expression_attribute_names or {}).items()),
            tuple(self.table.table_key_attrs),
        )

    def validate(self) -> Any:
        checked = self._context in self._parsed.passed
        node = self.node_to_validate
        for processor in self.processors:
            if checked and isinstance(processor, _CHECKS_OF_THE_TEXT):
                continue
            node = processor.traverse(node)
        self._parsed.passed.add(self._context)
        return node


def _node_types_once(self: Any) -> tuple[type, ...]:
    """The node types a check processes (the keys of its processing map, which do not change)."""
    types: tuple[type, ...] | None = self.__dict__.get("_node_types")
    if types is None:
        types = self.__dict__["_node_types"] = tuple(self._processing_map())
    return types
