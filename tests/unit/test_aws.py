"""The process's shared boto3 clients: a connection for every thread that uses them at once, adaptive
retries, and calls that end within the settings' time budget."""

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from boto3.dynamodb.conditions import Attr

from hookrelay import aws
from hookrelay.aws import client, table
from hookrelay.delivery import SEND_CONCURRENCY
from hookrelay.settings import AwsCallLimits
from hookrelay.store.delivery_log import WRITE_CONCURRENCY
from hookrelay.sweeper import SHARD_CONCURRENCY

ClientName = Literal["sqs", "events", "dynamodb", "dynamodb table"]


def client_config(name: ClientName) -> Any:
    # botocore-stubs declare Config's options as its constructor's arguments only, not as its attributes.
    if name == "dynamodb table":
        return table("any-table").client.meta.config
    return client(name).meta.config


@pytest.mark.parametrize("name", ["sqs", "events", "dynamodb", "dynamodb table"])
def test_a_shared_client_has_a_connection_per_thread_adaptive_retries_and_the_settings_limits(
    name: ClientName,
) -> None:
    config = client_config(name)
    # More threads than pooled connections would wait for one, or open and drop extra ones ("pool is full").
    assert config.max_pool_connections >= max(SEND_CONCURRENCY, WRITE_CONCURRENCY, SHARD_CONCURRENCY)
    limits = AwsCallLimits.from_environment(os.environ)
    assert config.retries == {"mode": "adaptive", "total_max_attempts": limits.attempts}
    assert (config.connect_timeout, config.read_timeout) == (
        limits.connect_timeout_seconds,
        limits.read_timeout_seconds,
    )


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[socket.socket]]:
    """An AWS endpoint on 127.0.0.1 that takes every connection and never answers, as a stuck one
    would; hookrelay.aws's clients aim at it. Yields the connections it took."""
    listener = socket.create_server(("127.0.0.1", 0))
    taken: list[socket.socket] = []

    def take() -> None:
        while True:
            try:
                taken.append(listener.accept()[0])
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=take, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    forget_clients()
    try:
        yield taken
    finally:
        listener.close()
        for connection in taken:
            connection.close()
        forget_clients()


def forget_clients() -> None:
    aws.session.cache_clear()
    aws._client.cache_clear()
    aws._tables_client.cache_clear()


def test_a_call_without_an_answer_ends_within_the_worst_case_of_its_attempts(
    silent_endpoint: list[socket.socket],
) -> None:
    # botocore's own limits (60 s to read an answer, 3 attempts) would outlast every function's Timeout.
    limits = AwsCallLimits.from_environment(os.environ)
    errors: list[Exception] = []
    # Made before the clock starts: the bound is the call's, and making a client under make test's load
    # took most of a second (CI: 4.8 s against the 4.0 s bound).
    sqs = client("sqs")

    def call() -> None:
        try:
            sqs.send_message_batch(QueueUrl="https://sqs.example/q", Entries=[])
        except Exception as error:
            errors.append(error)

    started = time.monotonic()
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(limits.worst_call_seconds + 1)
    took = time.monotonic() - started
    assert not caller.is_alive(), f"the call still waits after {took:.1f} s"
    assert took <= limits.worst_call_seconds
    # Each attempt waited out its read timeout on a connection of its own.
    assert len(silent_endpoint) == limits.attempts
    assert took >= limits.attempts * limits.read_timeout_seconds
    assert [type(error).__name__ for error in errors] == ["ReadTimeoutError"]


@pytest.mark.parametrize("name", ["sqs", "dynamodb", "dynamodb table"])
def test_a_shared_clients_exception_classes_are_made_before_its_threads_use_it(name: ClientName) -> None:
    # botocore makes them at their first use, unguarded: threads failing at once could each make their
    # own, and one's `except client.exceptions.X` would miss another's X.
    # `_exceptions` is botocore's own attribute, which the stubs leave out.
    shared: Any = table("any-table").client if name == "dynamodb table" else client(name)
    assert shared._exceptions is not None


def test_threads_sharing_a_table_client_each_get_their_own_condition_placeholders() -> None:
    # Before, boto3's one injector per client numbered every thread's placeholders with one pair of
    # counters, reset at each call: a thread could build `#n0 = :v0 AND #n0 = :v1` for two attributes.
    dynamodb = table("any-table").client
    update_item = dynamodb.meta.service_model.operation_model("UpdateItem")
    names = [f"attribute_{index}" for index in range(4)]
    condition = Attr(names[0]).eq(0) & Attr(names[1]).eq(1) & Attr(names[2]).eq(2) & Attr(names[3]).eq(3)
    wrong: list[dict[str, str]] = []

    def build() -> None:
        for _ in range(300):
            params: dict[str, Any] = {"TableName": "any-table", "Key": {"id": "x"}, "ConditionExpression": condition}
            dynamodb.meta.events.emit(
                "before-parameter-build.dynamodb.UpdateItem", params=params, model=update_item, context={}
            )
            if sorted(params["ExpressionAttributeNames"].values()) != names:
                wrong.append(params["ExpressionAttributeNames"])

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns within a call, as a busy container's may
    try:
        threads = [threading.Thread(target=build) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    assert not wrong, f"{len(wrong)} conditions lost an attribute, e.g. {wrong[0]}"
