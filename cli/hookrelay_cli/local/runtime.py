"""A Lambda container of the local stack: one function in a process of its own (see
local.functions.ContainerFunction, which starts it as `python -m hookrelay_cli.local.runtime <spec>`).

It runs the handler's module once (the init phase), answers `{"ready": true}`, then reads one
invocation a line on stdin (`{"request_id", "event"}`) and answers each with one line,
`{"result": ...}` or `{"error": "..."}`, on the pipe that was its stdout. The handler's own output
(print, logging, powertools' EMF metrics) goes to stderr, which the stack passes on as the
function's logs. Its AWS calls go where the environment says (AWS_ENDPOINT_URL: the stack's moto).
"""

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

from hookrelay import aws
from hookrelay_cli.local.faults import FAULTS_VARIABLE, Faults
from hookrelay_cli.local.functions import ContainerSpec, LocalFunction
from hookrelay_cli.local.hosts import HOSTS_FILE_VARIABLE, use_hosts_file
from hookrelay_cli.local.iam import FunctionPermissions, enforce_iam
from hookrelay_cli.local.knobs import niceness
from hookrelay_cli.local.tracing import DAEMON_ADDRESS_VARIABLE, trace_functions

# Local only: how far below the stack's own processes the containers run for CPU (nice, 0 to 19, default 0).
# On AWS a function's CPU never slows an AWS service's answer; on a small machine the containers compete
# with the processes that stand in for DynamoDB and SQS, unless these come first.
CONTAINER_NICENESS_VARIABLE = "HOOKRELAY_LOCAL_CONTAINER_NICENESS"


def container_niceness() -> int:
    return niceness(CONTAINER_NICENESS_VARIABLE, os.environ.get(CONTAINER_NICENESS_VARIABLE, "0"))


def start_container(spec: ContainerSpec) -> None:
    """What the container sets up once, before its function's module runs: its CPU priority, the stack's
    hosts file, its X-Ray daemon, the check of every AWS call against the function's role, and the faults
    the crash-safety tests inject (local.faults)."""
    os.nice(container_niceness())
    # Before the module makes its clients: every client of the process comes from this one session.
    if spec.permissions is not None:
        enforce_iam(aws.session(), FunctionPermissions(**spec.permissions))
    if faults_file := os.environ.get(FAULTS_VARIABLE):
        Faults(Path(faults_file)).install(aws.session().events)
    if hosts_file := os.environ.get(HOSTS_FILE_VARIABLE):
        use_hosts_file(Path(hosts_file))
    if spec.traced:
        trace_functions(os.environ[DAEMON_ADDRESS_VARIABLE], Path(spec.code_dir))


def _answer(answers: TextIO, answer: dict[str, Any]) -> None:
    answers.write(json.dumps(answer) + "\n")
    answers.flush()


def _error(error: BaseException) -> str:
    # Lambda's errorType and errorMessage; the traceback goes to the log, as Lambda writes it there.
    traceback.print_exception(error)
    return f"{type(error).__name__}: {error}"


def main() -> None:
    spec = ContainerSpec(**json.loads(sys.argv[1]))
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    function = LocalFunction(spec.function_spec(), traced=spec.traced)
    try:
        start_container(spec)
        function.load()
    except Exception as error:
        _answer(answers, {"error": _error(error)})
        return
    _answer(answers, {"ready": True})
    for line in sys.stdin:
        invocation = json.loads(line)
        try:
            result = function.invoke(invocation["event"], invocation["request_id"])
        except Exception as error:
            _answer(answers, {"error": _error(error)})
        else:
            try:
                _answer(answers, {"result": result})
            except (TypeError, ValueError) as error:  # Lambda's Runtime.MarshalError
                _answer(answers, {"error": _error(error)})


if __name__ == "__main__":
    main()
