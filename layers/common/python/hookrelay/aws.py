"""boto3 clients and resources, created once per process and shared by its threads."""

import functools
import threading
from typing import Any

import boto3
from botocore.config import Config

# Every thread of the largest pool that shares a client gets a connection of its own: the store's
# conditional writes (WRITE_CONCURRENCY, 16), above delivery's sends (SEND_CONCURRENCY, 10) and the
# sweeper's shards (SHARD_CONCURRENCY, 8); tests/unit/test_aws.py holds it to them. (Importing them
# here would cost the authorizer's cold start the delivery module's imports.) Adaptive retries also
# slow a client down while DynamoDB or SQS throttle it, with botocore's attempts per service.
CLIENT_CONFIG = Config(max_pool_connections=16, retries={"mode": "adaptive"})

_lock = threading.Lock()


@functools.cache
def session() -> boto3.session.Session:
    """The process's one session; hooks registered on its events reach every client made after."""
    return boto3.session.Session()


def client(service: str) -> Any:
    with _lock:
        return _client(service)


def table(name: str) -> Any:
    with _lock:
        return _dynamodb().Table(name)


@functools.cache
def _client(service: str) -> Any:
    return session().client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]


@functools.cache
def _dynamodb() -> Any:
    return session().resource("dynamodb", config=CLIENT_CONFIG)
