"""The one way a failure that becomes a 5xx or a retry is logged: an AWS error with its cause, once."""

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from hookrelay.errors import Unavailable
from hookrelay.observability import AwsError, aws_error, log_failure, logger

ACCESS_DENIED = ClientError(
    {"Error": {"Code": "AccessDeniedException", "Message": "User: arn:aws:sts::1:assumed-role/r is not authorized"}},
    "PutEvents",
)


def test_the_aws_error_of_a_failure_is_found_through_its_causes() -> None:
    expected = AwsError("PutEvents", "AccessDeniedException", "User: arn:aws:sts::1:assumed-role/r is not authorized")
    assert aws_error(ACCESS_DENIED) == expected
    try:
        try:
            raise ACCESS_DENIED
        except ClientError as error:
            raise Unavailable("the bus refused") from error
    except Unavailable as wrapped:
        assert aws_error(wrapped) == expected
    assert aws_error(ReadTimeoutError(endpoint_url="https://dynamodb")) == AwsError(
        None, "ReadTimeoutError", 'Read timeout on endpoint URL: "https://dynamodb"'
    )
    assert aws_error(ValueError("a bug")) is None


def logged_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> list[dict[str, Any]]:
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    capsys.readouterr()
    log_failure("request failed", error, delivery_id="d-1")
    return [json.loads(line) for line in (logged.getvalue() + capsys.readouterr().out).splitlines()]


def test_an_aws_error_is_one_error_line_with_its_cause_and_is_counted_by_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    line, metric = logged_lines(monkeypatch, capsys, ACCESS_DENIED)
    assert line["level"] == "ERROR" and line["message"] == "request failed" and line["delivery_id"] == "d-1"
    assert (line["aws_operation"], line["aws_error_code"]) == ("PutEvents", "AccessDeniedException")
    assert line["aws_error_message"].endswith("is not authorized") and "exception" not in line
    assert metric["AwsErrors"] == [1.0] and metric["error_code"] == "AccessDeniedException"


def test_a_bug_is_logged_with_its_traceback_and_not_counted_as_aws(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        raise ValueError("a bug")
    except ValueError as error:
        (line,) = logged_lines(monkeypatch, capsys, error)
    assert line["level"] == "ERROR" and "ValueError: a bug" in line["exception"]
