"""The process's shared boto3 clients: a connection for every thread that uses them at once, adaptive retries."""

import pytest
from botocore.config import Config

from hookrelay.aws import client, table
from hookrelay.delivery import SEND_CONCURRENCY
from hookrelay.store.deliveries import WRITE_CONCURRENCY
from hookrelay.sweeper import SHARD_CONCURRENCY


def client_config(name: str) -> Config:
    if name == "dynamodb table":
        return table("any-table").client.meta.config
    return client(name).meta.config


@pytest.mark.parametrize("name", ["sqs", "events", "dynamodb", "dynamodb table"])
def test_a_shared_client_has_a_connection_per_thread_and_adaptive_retries(name: str) -> None:
    config = client_config(name)
    # More threads than pooled connections would wait for one, or open and drop extra ones ("pool is full").
    assert config.max_pool_connections >= max(SEND_CONCURRENCY, WRITE_CONCURRENCY, SHARD_CONCURRENCY)
    assert config.retries["mode"] == "adaptive"
