"""X-Ray tracing of the local stack: always on in `local up` (the functions' containers), and for
in-process functions when HOOKRELAY_LOCAL_TRACES_FILE is set.

As Lambda does for `Tracing: Active`, each invocation runs in a segment of its own, in which
powertools' Tracer records its subsegments (the handler, botocore calls); the X-Ray SDK sends them
over UDP to the daemon address, where a stand-in for the X-Ray daemon writes each document as one
line of the traces file (HOOKRELAY_LOCAL_TRACES_FILE, if set).
"""

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TRACES_FILE_VARIABLE = "HOOKRELAY_LOCAL_TRACES_FILE"
# Where the X-Ray SDK sends segments (Lambda sets it to its daemon's address).
DAEMON_ADDRESS_VARIABLE = "AWS_XRAY_DAEMON_ADDRESS"
# The largest UDP datagram: the X-Ray SDK sends each segment or subsegment in one.
_MAX_DATAGRAM_BYTES = 65_535
_POLL_SECONDS = 0.2


class TraceCollector:
    """The X-Ray daemon's stand-in on 127.0.0.1 (a free UDP port): writes every segment it receives
    (the SDK's header line dropped) as one JSON line of `path` (without a path: drops them), until
    stopped."""

    def __init__(self, path: Path | None):
        self._path = path
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(_POLL_SECONDS)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xray-daemon", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._socket.close()

    def _run(self) -> None:
        with self._path.open("a", encoding="utf-8") if self._path else open(os.devnull, "w") as traces:
            # Stops once asked to and nothing more arrives, so that the last segments are kept.
            while True:
                try:
                    datagram = self._socket.recv(_MAX_DATAGRAM_BYTES)
                except TimeoutError:
                    if self._stopping.is_set():
                        return
                    continue
                _header, _, document = datagram.decode("utf-8", errors="replace").partition("\n")
                traces.write(document.replace("\n", " ") + "\n")
                traces.flush()


def trace_functions(daemon_address: str, task_root: Path) -> None:
    """Tracing on for the functions this process loads from now on, their segments sent to `daemon_address`.

    The variables are the ones Lambda sets: powertools' Tracer traces only where LAMBDA_TASK_ROOT is
    set. The recorder keeps each thread's segment (the SDK's Lambda mode reads one trace id from the
    process environment, which the stack's concurrent invocations cannot share). A thread a handler
    starts (the delivery function's senders) has no segment: its calls are not recorded (_thread_context).
    """
    os.environ.update(
        {
            "LAMBDA_TASK_ROOT": str(task_root),
            "POWERTOOLS_TRACE_DISABLED": "false",
            DAEMON_ADDRESS_VARIABLE: daemon_address,
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        }
    )
    from aws_xray_sdk.core import xray_recorder  # noqa: PLC0415 - only a traced stack loads the SDK here

    xray_recorder.configure(context=_thread_context(), sampling=False, daemon_address=daemon_address)


def _thread_context() -> Any:
    """The X-Ray SDK's context of one segment a thread, in which a thread outside any invocation's segment
    records into a segment not sampled: nothing is sent, and the SDK does not warn "No segment found"
    at each of its AWS calls (dozens a run, in the stack's log)."""
    from aws_xray_sdk.core.context import Context  # noqa: PLC0415
    from aws_xray_sdk.core.models.dummy_entities import DummySegment  # noqa: PLC0415

    class ThreadContext(Context):  # type: ignore[misc]
        def get_trace_entity(self) -> Any:
            if not getattr(self._local, "entities", None):
                self._local.entities = [DummySegment()]
            return super().get_trace_entity()

    return ThreadContext()


@contextmanager
def invocation_segment(function_id: str) -> Iterator[None]:
    """The segment Lambda opens around an invocation of a traced function, sent when it ends."""
    from aws_xray_sdk.core import xray_recorder  # noqa: PLC0415 - loaded by trace_functions already

    xray_recorder.begin_segment(name=function_id)
    try:
        yield
    finally:
        xray_recorder.end_segment()
