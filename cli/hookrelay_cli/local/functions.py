"""The template's Lambda functions, imported from functions/<name>/ and invoked in-process
(LocalFunction), or each container in a process of its own, ended at its function's Timeout as
Lambda ends it (ContainerFunction; the process runs hookrelay_cli.local.runtime).
"""

import importlib.util
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from abc import ABCMeta
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Protocol

from hookrelay_cli.local.tracing import invocation_segment
from hookrelay_cli.template import FunctionSpec

# Past the Timeout, what a container's answer may take to cross the pipe before it is killed.
_IPC_GRACE_SECONDS = 0.5
# Lambda's init phase limit (10 s), made generous: the stack shares a small machine with its tests.
INIT_TIMEOUT_SECONDS = 60
# What a container that has read its last invocation may take to exit before it is killed.
_EXIT_SECONDS = 5


@dataclass
class LocalContext:
    """The parts of the Lambda context object that handlers and powertools read."""

    function_name: str
    # The function's Timeout: what the context says is left at the start.
    timeout_millis: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_millis / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Function(Protocol):
    """A function the stack invokes: the gateway, pollers, timers and `local invoke` see only this."""

    spec: FunctionSpec
    container: int

    def invoke(self, event: Any) -> Any: ...


# What a handler imports when it resolves HTTP events with powertools.
_ROUTERS_MODULE = "aws_lambda_powertools.event_handler.api_gateway"
# The invocation each thread runs, for the router state below.
_invocation = threading.local()
# Containers may load at once: the router is changed once, and a function's directory put on the path once.
_router_changed = threading.Lock()
_import_path_changed = threading.Lock()


def _per_invocation(name: str) -> property:
    def get(_owner: object) -> Any:
        try:
            return getattr(_invocation, name)
        except AttributeError:
            raise AttributeError(name) from None

    def set_(_owner: object, value: Any) -> None:
        setattr(_invocation, name, value)

    return property(get, set_)


class _RouterPerInvocation(ABCMeta):
    """BaseRouter's class, giving `BaseRouter.current_event = ...` (what every resolver's `resolve` does) a
    value per thread: a class attribute is process-wide, and in-process containers share one process."""

    __slots__ = ()
    current_event = _per_invocation("current_event")
    lambda_context = _per_invocation("lambda_context")


def _give_each_invocation_its_own_router_state() -> None:
    """Keep powertools' resolvers of in-process containers from answering one request with another's event.

    A resolver keeps the event and context it resolves on BaseRouter, its base class, and its routes and
    validation read them back from there (the body, the path): on Lambda each container is a process of
    its own, so each sees only its invocation's; here two containers of the API resolving at once would
    each read the later one's. An invocation runs on one thread (the caller's) from start to end, so a
    value per thread is a value per invocation. Instances read it through the class's own attributes;
    `BaseRouter.x = ...` goes through its metaclass's.
    """
    # Already imported by the handler (see LocalFunction._load).
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter  # noqa: PLC0415

    with _router_changed:
        if isinstance(BaseRouter, _RouterPerInvocation):
            return
        for name in ("current_event", "lambda_context"):
            setattr(BaseRouter, name, _per_invocation(name))
        BaseRouter.__class__ = _RouterPerInvocation  # type: ignore[method-assign, assignment]


def _on_import_path(code_dir: Path) -> None:
    """Let a handler import the modules beside it (the API's routes/), as Lambda does: it runs the function with its
    code's directory, /var/task, on the import path. Those modules are the process's, shared by the containers of
    the function, so they hold no container's objects (the API's routers are built by each container's app.py)."""
    entry = str(code_dir.resolve())
    with _import_path_changed:
        if entry not in sys.path:
            sys.path.insert(0, entry)


class LocalFunction:
    """One function's handler, invoked one event at a time like a single Lambda container.

    Each instance loads the handler's module for itself, so it has its own clients, caches and
    keep-alive sessions, as a container has; `container` numbers several of one function.
    A `traced` function's invocations each run in an X-Ray segment (see local.tracing).
    """

    def __init__(self, spec: FunctionSpec, container: int = 0, *, traced: bool = False):
        self.spec = spec
        self.container = container
        self.traced = traced
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def _load(self) -> ModuleType:
        if self._module is None:
            _on_import_path(self.spec.code_dir)
            path = self.spec.code_dir / f"{self.spec.module.replace('.', '/')}.py"
            name = f"hookrelay_function_{self.spec.logical_id}" + (f"_{self.container}" if self.container else "")
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(module_spec)
            # Registered before it runs, as an import would: pydantic resolves models through sys.modules.
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            # Before its first invocation; a handler that resolves no HTTP events has no router to fix.
            if _ROUTERS_MODULE in sys.modules:
                _give_each_invocation_its_own_router_state()
            self._module = module
        return self._module

    def load(self) -> None:
        """Run the handler's module (its init), as a cold start does before the first invocation."""
        with self._lock:
            self._load()

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        with self._lock:
            handler = getattr(self._load(), self.spec.handler)
            context = LocalContext(
                function_name=self.spec.logical_id,
                timeout_millis=int(self.spec.timeout_seconds * 1000),
                aws_request_id=request_id or str(uuid.uuid4()),
            )
            with invocation_segment(self.spec.logical_id) if self.traced else nullcontext():
                return handler(event, context)


class ScalingFunction:
    """A function as API Gateway invokes it: a request that arrives while every container of the
    function is busy gets a new container (Lambda scales out per concurrent request), up to
    `max_containers`, beyond which it waits for one to be free; an idle container is used again.
    With `reserved` (its ReservedConcurrentExecutions) at most `max_containers`, a request that finds
    that many busy is throttled as Lambda throttles it (FunctionThrottled) rather than waiting.

    `first` is the function's container 0; `new_container(n)` makes container n at need.
    """

    def __init__(
        self,
        first: Function,
        new_container: Callable[[int], Function],
        max_containers: int,
        reserved: int | None = None,
    ):
        self.spec = first.spec
        self.container = first.container
        self._idle = [first]
        self._containers = 1
        self._new_container = new_container
        self._throttles = reserved is not None and reserved <= max_containers
        self._max_containers = min(max_containers, reserved) if reserved is not None else max_containers
        self._freed = threading.Condition()

    def invoke(self, event: Any) -> Any:
        container = self._take()
        try:
            return container.invoke(event)
        finally:
            with self._freed:
                self._idle.append(container)
                self._freed.notify()

    def _take(self) -> Function:
        with self._freed:
            while not self._idle and self._containers >= self._max_containers:
                if self._throttles:
                    raise FunctionThrottled(
                        f"{self.spec.logical_id}: Rate Exceeded (its reserved concurrency, {self._max_containers})"
                    )
                self._freed.wait()
            if self._idle:
                # The one used last: its caches and connections are the warmest, as Lambda prefers.
                return self._idle.pop()
            number = self._containers
            self._containers += 1
        return self._new_container(number)


class FunctionError(Exception):
    """An invocation that failed: the handler raised, its container died, or it ran past its Timeout."""


class FunctionTimedOut(FunctionError):
    pass


class FunctionThrottled(FunctionError):
    """Lambda's TooManyRequestsException: every execution the function's reserved concurrency allows is busy."""


@dataclass(frozen=True)
class ContainerSpec:
    """What a container process needs to know of its function (the environment carries the rest)."""

    function_id: str
    code_dir: str
    module: str
    handler: str
    timeout_seconds: int
    role_id: str
    traced: bool
    # The fields of its role's FunctionPermissions (hookrelay_cli.local.iam) when IAM is enforced.
    permissions: dict[str, Any] | None = None

    @classmethod
    def of(cls, spec: FunctionSpec, traced: bool, permissions: dict[str, Any] | None) -> "ContainerSpec":
        code_dir = str(spec.code_dir)
        return cls(
            spec.logical_id,
            code_dir,
            spec.module,
            spec.handler,
            spec.timeout_seconds,
            spec.role_id,
            traced,
            permissions,
        )

    def function_spec(self) -> FunctionSpec:
        return FunctionSpec(
            logical_id=self.function_id,
            code_dir=Path(self.code_dir),
            module=self.module,
            handler=self.handler,
            environment={},
            timeout_seconds=self.timeout_seconds,
            role_id=self.role_id,
        )


class ContainerFunction:
    """One Lambda container of a function: a process of its own (hookrelay_cli.local.runtime), started
    at its first invocation (a cold start) and kept for the next ones, one invocation at a time.

    An invocation still running at the function's Timeout is ended as Lambda ends it: the process is
    killed, so the handler has no effect after it, `<request id> Task timed out after N.NN seconds`
    is logged, FunctionTimedOut raised, and the next invocation starts a fresh container. The
    process's output is the function's log, passed on line by line to this process's stdout.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        container: int = 0,
        *,
        traced: bool,
        environment: dict[str, str],
        permissions: dict[str, Any] | None = None,
    ):
        self.spec = spec
        self.container = container
        self._container_spec = ContainerSpec.of(spec, traced, permissions)
        self._environment = {
            **environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout_seconds)),
            "PYTHONUNBUFFERED": "1",
            # In the User-Agent of its AWS calls: the local DynamoDB serves its callers in turns.
            "AWS_SDK_UA_APP_ID": f"{spec.logical_id}-{container}",
        }
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._logs: threading.Thread | None = None
        self._answers = bytearray()
        self._stopped = False

    def invoke(self, event: Any) -> Any:
        with self._lock:
            if self._stopped:
                raise FunctionError(f"{self.spec.logical_id}: the stack has stopped")
            process = self._process or self._cold_start()
            request_id = str(uuid.uuid4())
            assert process.stdin is not None
            try:
                process.stdin.write(json.dumps({"request_id": request_id, "event": event}).encode() + b"\n")
                process.stdin.flush()
            except BrokenPipeError:
                self._end()
                raise FunctionError(f"{self.spec.logical_id}: its container exited") from None
            timeout = self.spec.timeout_seconds
            answer = self._answer(time.monotonic() + timeout + _IPC_GRACE_SECONDS)
            if answer is None:
                self._end()
                _log_line(f"{request_id} Task timed out after {timeout:.2f} seconds")
                raise FunctionTimedOut(f"{self.spec.logical_id}: Task timed out after {timeout:.2f} seconds")
            return _result(self.spec.logical_id, answer)

    def kill(self) -> None:
        """SIGKILL the container's process, as a crash does, mid-invocation too (the invocation then
        fails with FunctionError and the next one starts a fresh container)."""
        process = self._process  # not under the lock, which a running invocation holds
        if process is not None:
            process.kill()

    def stop(self) -> None:
        """End the container (its process reads no more invocations), its last log lines passed on.

        One still invoked is killed, as a crash ends it: the invocation fails and its caller ends it.
        A later invocation fails at once, without starting a container.
        """
        self._stopped = True
        if not self._lock.acquire(blocking=False):
            self.kill()
            return
        try:
            if self._process is not None:
                assert self._process.stdin is not None
                self._process.stdin.close()
                with suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=_EXIT_SECONDS)
                self._end()
        finally:
            self._lock.release()

    def _cold_start(self) -> "subprocess.Popen[bytes]":
        process = subprocess.Popen(  # noqa: S603 - this interpreter, the stack's own module
            [sys.executable, "-m", "hookrelay_cli.local.runtime", json.dumps(asdict(self._container_spec))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._environment,
            # A group of its own: a Ctrl-C in the terminal goes to the terminal's process group, and the
            # stack alone ends its containers (closing their stdin, or killing them), as Lambda does.
            process_group=0,
        )
        assert process.stderr is not None
        self._process, self._answers = process, bytearray()
        self._logs = threading.Thread(
            target=_pass_on_lines,
            args=(process.stderr,),
            name=f"logs-{self.spec.logical_id}-{self.container}",
            daemon=True,
        )
        self._logs.start()
        # The init phase (the handler's module run) is not counted in the first invocation's time.
        ready = self._answer(time.monotonic() + INIT_TIMEOUT_SECONDS)
        if ready is None or "error" in ready:
            self._end()
            raise FunctionError(f"{self.spec.logical_id}: init failed" + (f": {ready['error']}" if ready else ""))
        return process

    def _answer(self, deadline: float) -> dict[str, Any] | None:
        """The container's next answer line; None if none came by `deadline`."""
        assert self._process is not None and self._process.stdout is not None
        descriptor = self._process.stdout.fileno()
        while b"\n" not in self._answers:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([descriptor], [], [], left)[0]:
                return None
            chunk = os.read(descriptor, 65536)
            if not chunk:
                code = self._process.wait()
                self._end()
                raise FunctionError(f"{self.spec.logical_id}: its container exited ({code}) during the invocation")
            self._answers.extend(chunk)
        line, _, rest = bytes(self._answers).partition(b"\n")
        self._answers = bytearray(rest)
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _end(self) -> None:
        """Kill the container (if it still runs) and wait for its last log lines."""
        process, logs = self._process, self._logs
        self._process = self._logs = None
        if process is not None:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if logs is not None:
            logs.join(timeout=5)


def _result(function_id: str, answer: dict[str, Any]) -> Any:
    if "error" in answer:
        raise FunctionError(f"{function_id}: {answer['error']}")
    return answer["result"]


def _pass_on_lines(stream: IO[bytes]) -> None:
    for line in stream:
        _log_line(line.decode("utf-8", errors="replace").rstrip("\n"))
    stream.close()


def _log_line(text: str) -> None:
    # sys.stdout at the time of writing: `local invoke` sends the function's logs to stderr.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
