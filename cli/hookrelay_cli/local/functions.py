"""The template's Lambda functions, imported from functions/<name>/ and invoked in-process."""

import importlib.util
import sys
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from hookrelay_cli.local.tracing import invocation_segment
from hookrelay_cli.template import FunctionSpec

_TIMEOUT_MILLIS = 30_000


@dataclass
class LocalContext:
    """The parts of the Lambda context object that handlers and powertools read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default_factory=lambda: time.monotonic() + _TIMEOUT_MILLIS / 1000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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
            self._module = module
        return self._module

    def invoke(self, event: Any) -> Any:
        with self._lock:
            handler = getattr(self._load(), self.spec.handler)
            with invocation_segment(self.spec.logical_id) if self.traced else nullcontext():
                return handler(event, LocalContext(function_name=self.spec.logical_id))
