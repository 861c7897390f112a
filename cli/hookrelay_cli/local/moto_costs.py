"""moto at a cost that does not grow with what it holds, with the same answers, where the local stack's
throughput noticed (benchmarks/end_to_end.py):

- SQS reads its clock for every message it looks at (is it visible? delayed?), and a receive
  checked each message it hands out against its queue's retention period by building every
  attribute of the queue, three of which count its messages: a batch of 10 from a queue of 1 000
  took most of a second. SQS's clock is read as time.time() (moto's is the same value through
  datetime arithmetic, some 30 times slower), and the retention period from the queue itself.
  (A send still walks the queue to build its attributes, at a microsecond or so a message.)
- An event on a bus was matched to its rule's targets by building a JSONPath parser (a yacc table)
  for every path of the target's input, event after event. Parsed paths are kept (a path's parse
  does not change).

Hooks on moto's models, which serve both the stack's in-process server and `mock_aws`.
"""

import functools
import time
from datetime import datetime
from typing import Any

import jsonpath_ng.ext
import moto.sqs.models
from moto.core.utils import unix_time as _moto_unix_time
from moto.sqs.models import Message, SQSBackend

# Module globals replaced at install (untyped here: their stubs say they are not re-exported).
_sqs_models: Any = moto.sqs.models
_jsonpath: Any = jsonpath_ng.ext


@functools.cache  # installed once per process
def keep_moto_costs_flat() -> None:
    """Install the cheaper paths in this process's moto (once)."""
    _sqs_models.unix_time, _sqs_models.unix_time_millis = _unix_time, _unix_time_millis
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[method-assign]
    # moto's EventTemplateParser imports `parse` from the module at each call, so it finds this one.
    _jsonpath.parse = functools.lru_cache(maxsize=256)(_jsonpath.parse)


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
