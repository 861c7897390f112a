"""moto's standard queues as SQS fair queues, and EventBridge's SQS targets that set a message group.

SQS (AWS "How Amazon SQS fair queues work") treats a standard queue's MessageGroupId as the message's
tenant, and each message without one as a tenant of its own. A tenant is noisy when it holds more
than 10 % of the queue's in-flight messages and at least 30 of its own, or more than 10 % of the
consumers' recent processing time. While any quiet tenant's message waits, a receive returns those
first; among noisy tenants, the one with the fewest in flight first. A noisy tenant recovers when its
backlog drains or after 5 minutes without a send. AWS calls its thresholds approximate; here they are
exact, "recent" is the last RECENT_SECONDS, a message's processing time is from its receive to its
delete (counted once deleted), and a recovered tenant's earlier processing time no longer counts
towards its own share (it still counts in the total), so that it starts again as quiet as a new one.

moto stores a standard queue's MessageGroupId and returns it, but receives in arrival order. An
EventBridge rule's SQS target passes SqsParameters.MessageGroupId as written: a dynamic path
(`$.detail.event.team_id`, which AWS resolves from the event) reached the queue as that text, and
moto refused to send a group to a queue without content-based deduplication (a FIFO rule).

moto's SQS is not safe to call from several threads at once, and its server answers each request
on a thread of its own: a receive walked a set that another receive changed (RuntimeError), a delete
rebuilt the message list while a send appended to the old one (the message was lost), two receives
handed out the same message. Every call that reads or changes a queue's messages holds that queue's
lock; a long poll waits between its passes without it, so that sends and deletes go on meanwhile.
A delete finds its message by its receipt handle (moto walked the whole queue twice, calling a method
per message: 4 ms in a queue of 6 000).

Hooks on moto's models, which serve both the stack's in-process server and `mock_aws`.
"""

import functools
import heapq
import json
import threading
import time
import weakref
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonpath_ng.ext
import moto.events.models
import moto.sqs.models
from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.sqs.models import Message, Queue, SQSBackend

NOISY_SHARE = 0.10
NOISY_MIN_IN_FLIGHT = 30
QUIET_AFTER_SECONDS = 5 * 60
RECENT_SECONDS = 60.0

# Module globals read at each call (untyped here: their stubs say they are not re-exported).
_sqs_models: Any = moto.sqs.models
_events_models: Any = moto.events.models
_jsonpath: Any = jsonpath_ng.ext


class RecentProcessing:
    """Processing times of deleted messages, summed over the part of each that falls within the last
    RECENT_SECONDS, as a receive asks for it: kept up to date as messages are deleted and the window
    moves, rather than summed again at each receive (a noisy tenant's minute of deletes, 12 000 at 200
    a second, took most of each receive's time)."""

    def __init__(self) -> None:
        self._by_end: deque[tuple[float, float]] = deque()  # (ended, took), oldest end first
        self._by_start: list[tuple[float, float, float]] = []  # heap of (started, ended, took) within the window
        self._within_took = 0.0  # the sum of took over those that started within the window
        # Those that started before the window and end within it count from the window's start.
        self._straddling = 0
        self._straddling_ends = 0.0

    def add(self, ended: float, took: float) -> None:
        self._by_end.append((ended, took))
        heapq.heappush(self._by_start, (ended - took, ended, took))
        self._within_took += took

    def total(self, now: float) -> float:
        """sum(min(took, ended - (now - RECENT_SECONDS))) over those that ended within the window."""
        window_start = now - RECENT_SECONDS
        while self._by_start and self._by_start[0][0] < window_start:
            _, ended, took = heapq.heappop(self._by_start)
            self._within_took -= took
            self._straddling += 1
            self._straddling_ends += ended
        # Whatever ended before the window started before it too: it is straddling by now.
        while self._by_end and self._by_end[0][0] < window_start:
            ended, _ = self._by_end.popleft()
            self._straddling -= 1
            self._straddling_ends -= ended
        if not self._by_end:  # nothing left to count: no rounding carried over
            self._within_took = self._straddling_ends = 0.0
        return max(0.0, self._within_took + self._straddling_ends - self._straddling * window_start)

    def __bool__(self) -> bool:
        return bool(self._by_end)


@dataclass
class _Tenant:
    last_sent: float = 0.0
    # Its messages' processing, and that since it last recovered (what makes it noisy).
    processed: RecentProcessing = field(default_factory=RecentProcessing)
    processed_since_recovery: RecentProcessing = field(default_factory=RecentProcessing)


@dataclass
class _QueueState:
    tenants: defaultdict[str, _Tenant] = field(default_factory=lambda: defaultdict(_Tenant))
    # Held by every call on the queue's messages, and for its tenants (re-entrant: moto's own event
    # source mappings receive from a queue within a send to it).
    lock: threading.RLock = field(default_factory=threading.RLock)


_queues: "weakref.WeakKeyDictionary[Queue, _QueueState]" = weakref.WeakKeyDictionary()
# Messages by receipt handle, to find what a delete ends, and when each was last received.
_by_handle: "weakref.WeakValueDictionary[str, Message]" = weakref.WeakValueDictionary()
_received_at: "weakref.WeakKeyDictionary[Message, float]" = weakref.WeakKeyDictionary()
# The queue a receive on this thread is choosing messages from.
_receiving = threading.local()


def clock() -> float:
    return time.monotonic()


@functools.cache  # installed once per process
def keep_queues_fair() -> None:
    """Install fair receives on every standard queue, calls on a queue one at a time, and dynamic message
    groups on rule targets (once)."""
    add_message, delete_message, mark_received = Queue.add_message, Queue.delete_message, Message.mark_received
    visible_messages = vars(Queue)["messages"].fget

    def sent(self: Queue, message: Message) -> None:
        state = _state(self)
        with state.lock:
            state.tenants[_tenant_of(message)].last_sent = clock()
            add_message(self, message)

    def received(self: Message, visibility_timeout: int | None = None) -> None:
        mark_received(self, visibility_timeout)
        _received_at[self] = clock()
        _by_handle[str(self.receipt_handle)] = self

    def deleted(self: Queue, receipt_handle: str) -> None:
        state = _state(self)
        with state.lock:
            message = _by_handle.get(receipt_handle)
            already = receipt_handle in self.deleted_messages
            if message is not None and not already and message in self._messages:
                # What moto's delete does once it has walked the queue twice to find the message.
                remaining = list(self._messages)
                remaining.remove(message)
                self._messages = remaining
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]  # as moto does
            else:
                delete_message(self, receipt_handle)  # moto's answer: gone already, or not a handle of this queue
            if message is not None and not already and message in _received_at:
                now = clock()
                tenant = state.tenants[_tenant_of(message)]
                tenant.processed.add(now, now - _received_at[message])
                tenant.processed_since_recovery.add(now, now - _received_at[message])

    def messages(self: Queue) -> list[Message]:
        if getattr(_receiving, "queue", None) is self:
            return fair_order(self)
        return visible_messages(self)  # type: ignore[no-any-return]

    Queue.add_message = sent  # type: ignore[method-assign]
    Queue.delete_message = deleted  # type: ignore[method-assign]
    Message.mark_received = received  # type: ignore[method-assign]
    SQSBackend.receive_message = _fair_receive(SQSBackend.receive_message)  # type: ignore[method-assign]
    SQSBackend.change_message_visibility = _one_at_a_time(SQSBackend.change_message_visibility)  # type: ignore[method-assign]
    SQSBackend.purge_queue = _one_at_a_time(SQSBackend.purge_queue)  # type: ignore[method-assign]
    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]
    _events_models.Rule._send_to_sqs_queue = _sender_resolving_group(_events_models.Rule._send_to_sqs_queue)


def _fair_receive(receive_message: Callable[..., list[Message]]) -> Callable[..., list[Message]]:
    """moto's receive, one pass at a time under the queue's lock, choosing in fair order from a
    standard queue; a long poll waits for messages between passes, without the lock."""

    def receive(
        self: SQSBackend, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kwargs: Any
    ) -> list[Message]:
        queue = self.get_queue(queue_name)
        state, polling_end = _state(queue), time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with state.lock:
                _receiving.queue = None if queue.fifo_queue else queue
                try:
                    found = receive_message(self, queue_name, count, 0, *args, **kwargs)
                finally:
                    _receiving.queue = None
            if found or time.monotonic() >= polling_end:
                return found
            queue.wait_for_messages(1)  # as moto polls: a pass a second at most, or on a send

    return receive


def _one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    """A backend method on one queue's messages (`method(backend, queue_name, ...)`), under the queue's lock."""

    def locked(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with _state(self.get_queue(queue_name)).lock:
            return method(self, queue_name, *args, **kwargs)

    return locked


def _state(queue: Queue) -> _QueueState:
    found = _queues.get(queue)
    if found is None:
        found = _queues.setdefault(queue, _QueueState())
    return found


def _tenant_of(message: Message) -> str:
    return message.group_id if message.group_id is not None else f"message#{message.id}"


def fair_order(queue: Queue) -> list[Message]:
    """The queue's receivable messages in the order a fair queue hands them out: quiet tenants' in
    arrival order, then noisy tenants', the tenant with the fewest in flight first. Called by a receive,
    which holds the queue's lock."""
    now, now_millis = clock(), _sqs_models.unix_time_millis()
    # Comprehensions, not one loop: a receive walks the whole queue (thousands behind a noisy tenant).
    messages = queue._messages  # in arrival order
    receivable = [m for m in messages if now_millis > m.visible_at and now_millis >= m.delayed_until]
    tenants = [_tenant_of(m) for m in receivable]
    in_flight = Counter(_tenant_of(m) for m in messages if m.visible_at > now_millis and m in _received_at)
    noisy = _noisy_tenants(_state(queue), now, set(tenants), in_flight)
    if not noisy:
        return receivable
    quiet: list[Message] = []
    loud: defaultdict[str, list[Message]] = defaultdict(list)
    for tenant, message in zip(tenants, receivable, strict=True):
        (loud[tenant] if tenant in noisy else quiet).append(message)
    fewest_in_flight_first = sorted(loud, key=lambda tenant: (in_flight[tenant], tenant))
    return quiet + [message for tenant in fewest_in_flight_first for message in loud[tenant]]


def _noisy_tenants(
    queue: _QueueState,
    now: float,
    waiting: set[str],
    in_flight: dict[str, int],
) -> set[str]:
    processing: dict[str, float] = {}  # each tenant's own, since it last recovered
    total_processing = 0.0  # everyone's
    for tenant_id, tenant in list(queue.tenants.items()):
        recent = tenant.processed.total(now)
        sent_long_ago = now - tenant.last_sent > QUIET_AFTER_SECONDS
        if tenant_id not in waiting or sent_long_ago:
            tenant.processed_since_recovery = RecentProcessing()
        if sent_long_ago and not tenant.processed and tenant_id not in waiting and tenant_id not in in_flight:
            del queue.tenants[tenant_id]
            continue
        total_processing += recent
        processing[tenant_id] = tenant.processed_since_recovery.total(now)
    last_sent = {tenant_id: tenant.last_sent for tenant_id, tenant in queue.tenants.items()}
    total_in_flight = sum(in_flight.values())
    return {
        tenant
        for tenant in waiting
        if now - last_sent.get(tenant, now) <= QUIET_AFTER_SECONDS
        and (
            (in_flight.get(tenant, 0) >= NOISY_MIN_IN_FLIGHT and in_flight[tenant] > NOISY_SHARE * total_in_flight)
            or (total_processing > 0 and processing.get(tenant, 0.0) > NOISY_SHARE * total_processing)
        )
    }


def _sender_resolving_group(send: Callable[..., None]) -> Callable[..., None]:
    """A rule target's send to SQS that resolves a MessageGroupId given as a JSON path ("$." and on)
    against the event, as EventBridge's dynamic path parameters do, and gives a standard queue's
    message its group (moto's own send asks such a queue for a FIFO attribute it lacks)."""

    def send_to_sqs_queue(self: Any, resource_id: str, event: dict[str, Any], group_id: str | None = None) -> None:
        if group_id and group_id.startswith("$."):
            found = [match.value for match in _jsonpath.parse(group_id).find(event)]
            group_id = str(found[0]) if found and isinstance(found[0], str) else None
        backend: Any = _sqs_models.sqs_backends[self.account_id][self.region_name]
        if not group_id or backend.get_queue(resource_id).fifo_queue:
            send(self, resource_id, event, group_id)
            return
        if "time" in event:
            sent_at: Any = float(event["time"])
            event["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(sent_at))
        backend.send_message(queue_name=resource_id, message_body=json.dumps(event), group_id=group_id)

    return send_to_sqs_queue
