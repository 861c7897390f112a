"""Which AWS failures are worth asking again later (a 503 with Retry-After), and which are not (a 500)."""

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from hookrelay.store.retries import refused_for_now


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "GetItem")


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://dynamodb"),
        ConnectTimeoutError(endpoint_url="https://dynamodb"),
        EndpointConnectionError(endpoint_url="https://dynamodb"),
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("InternalServerError"),
    ],
)
def test_a_call_not_answered_in_time_or_throttled_is_refused_for_now(error: Exception) -> None:
    assert refused_for_now(error)


@pytest.mark.parametrize(
    "error",
    [client_error("AccessDeniedException"), client_error("ValidationException"), KeyError("team_id")],
)
def test_a_call_that_would_fail_the_same_way_again_is_not(error: Exception) -> None:
    assert not refused_for_now(error)
