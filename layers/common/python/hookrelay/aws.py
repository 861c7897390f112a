"""boto3 clients and resources, created once per process and shared by its threads."""

import functools
import threading
from typing import Any

import boto3

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
    return session().client(service)  # type: ignore[call-overload]


@functools.cache
def _dynamodb() -> Any:
    return session().resource("dynamodb")
