"""`hookrelay local up` in its own process, as a user starts it: for the e2e tests and benchmarks/end_to_end.py."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import boto3

from hookrelay_cli.local.stack import LOCAL_CREDENTIALS
from paths import REPO

READY = re.compile(r"hookrelay local stack ready on (http://\S+)")
AWS_ENDPOINT = re.compile(r"AWS endpoint \(moto\): (http://\S+)")
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
# DynamoDB as AWS runs it, in every e2e stack (a test's own environment may go further, as R1 does)
# and the benchmarks that say so: besides `local up`'s own defaults (reads without ConsistentRead
# 200 ms stale, transactions holding their items, hot partition keys throttled), a fifth of
# transactions cancelled for TransactionConflict and indexes 200 ms behind their table.
AS_STRICT_AS_AWS = {"HOOKRELAY_LOCAL_TRANSACTION_CONFLICT_RATE": "0.2", "HOOKRELAY_LOCAL_INDEX_LAG_MS": "200"}


class LocalUpFailed(RuntimeError):
    """The stack exited or did not say it was ready in time; the message holds what it printed."""


@dataclass
class LocalUp:
    process: subprocess.Popen[str]
    url: str
    aws_endpoint: str
    output: list[str]
    # Keeps reading the stack's output into `output`, so that it never blocks on a full pipe.
    drain: threading.Thread

    def client(self, service: Literal["dynamodb", "sqs"]) -> Any:
        """A boto3 client of the stack's moto server, with the credentials the stack gives its functions."""
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


def start(environment: dict[str, str], *, own_process_group: bool = False) -> LocalUp:
    """Start the stack on free ports with `environment` added to ours; return once it is ready. In a
    process group of its own, as a terminal starts a command, a Ctrl-C can be sent to the whole group."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hookrelay_cli.main", "local", "up", "--port", "0", "--aws-port", "0"],
        cwd=REPO,
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0 if own_process_group else None,
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    url = aws_endpoint = None
    while url is None:
        line = process.stdout.readline()
        if not line:
            raise LocalUpFailed("local stack exited before it was ready:\n" + "".join(output))
        output.append(line)
        if match := AWS_ENDPOINT.search(line):
            aws_endpoint = match.group(1)
        if match := READY.search(line):
            url = match.group(1)
        if time.monotonic() > deadline:
            process.kill()
            raise LocalUpFailed("local stack not ready in time:\n" + "".join(output))
    if not aws_endpoint:
        process.kill()
        raise LocalUpFailed("local stack did not print its AWS endpoint:\n" + "".join(output))
    drain = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    drain.start()
    return LocalUp(process, url, aws_endpoint, output, drain)


def stop(started: LocalUp) -> int:
    """Ctrl-C, as a user stops it; its exit status. LocalUpFailed, with its last lines (a stop that
    hangs prints where its threads are), if it has not exited STOP_TIMEOUT_SECONDS later."""
    started.process.send_signal(signal.SIGINT)
    try:
        return started.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        started.process.kill()
        started.process.wait()
        started.drain.join(timeout=5)
        raise LocalUpFailed(
            f"the local stack did not exit within {STOP_TIMEOUT_SECONDS} s of Ctrl-C; its last lines:\n"
            + "".join(started.output[-120:])
        ) from None


@contextmanager
def running(environment: dict[str, str]) -> Iterator[LocalUp]:
    """The stack for the `with` block, then stopped; LocalUpFailed if it does not exit cleanly.

    A failure inside the block is raised as it is, not hidden behind the stack's exit status.
    """
    started = start(environment)
    try:
        yield started
    finally:
        exit_code = stop(started)
    if exit_code != 0:
        raise LocalUpFailed(
            f"the local stack exited with {exit_code}; its last lines:\n" + "".join(started.output[-50:])
        )
