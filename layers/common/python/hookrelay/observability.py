"""One Logger, Metrics and Tracer per process, shared by every handler and module, and the one way a
failure that becomes a 5xx or a retry is logged."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from hookrelay.errors import Unavailable

# X-Ray subsegments for every AWS call. Not the Tracer's default (every library the X-Ray SDK can
# patch and finds installed, each imported to be patched): a function must not pay at start for
# libraries it never calls. Webhook sends are not traced: patching requests would add our
# X-Amzn-Trace-Id header to every request a customer receives.
TRACED_LIBRARIES = ("botocore",)
# Counted per error code (dimension error_code) each time an AWS error becomes a 5xx or a retry.
AWS_ERRORS_METRIC = "AwsErrors"
# AWS's messages name the operation's resources (an ARN, a table), never request data; cut anyway.
_AWS_MESSAGE_LIMIT = 500

# A failure the function turns into a 5xx or a retry is an ERROR; one it works around, a WARNING.
type Level = Literal["ERROR", "WARNING"]

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=TRACED_LIBRARIES)


@dataclass(frozen=True)
class AwsError:
    """What AWS (or botocore, before an answer) said went wrong."""

    operation: str | None
    code: str
    message: str

    def log_fields(self) -> dict[str, str | None]:
        return {"aws_operation": self.operation, "aws_error_code": self.code, "aws_error_message": self.message}


def aws_error(error: BaseException) -> AwsError | None:
    """The AWS error that `error` is, or was raised from or while handling; None when there is none."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ClientError):
            details = seen.response.get("Error", {})
            code, message = str(details.get("Code") or "Unknown"), str(details.get("Message") or "")
            return AwsError(seen.operation_name, code, message[:_AWS_MESSAGE_LIMIT])
        if isinstance(seen, BotoCoreError):
            # Raised before AWS answered (a timeout, no connection): botocore says no operation.
            return AwsError(None, type(seen).__name__, str(seen)[:_AWS_MESSAGE_LIMIT])
        seen = seen.__cause__ or seen.__context__
    return None


def log_aws_error(message: str, cause: AwsError, /, *, level: Level = "ERROR", **extra: Any) -> None:
    """Log, once, an AWS error a function turns into a 5xx, a retry or a fallback, and count it."""
    _emit(level)(message, extra={**extra, **cause.log_fields()})
    with single_metric(name=AWS_ERRORS_METRIC, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="error_code", value=cause.code)


def log_failure(message: str, error: BaseException, /, *, level: Level = "ERROR", **extra: Any) -> None:
    """Log, once and at ERROR unless told, a failure a function turns into a 5xx, a retry or a fallback: an
    AWS error with its operation, code and message (log_aws_error), an outage (Unavailable) in one line,
    anything else, a bug, with its traceback. A call AWS did not answer in time is not a bug: no traceback."""
    cause = aws_error(error)
    if cause is not None:
        log_aws_error(message, cause, level=level, **extra)
    elif isinstance(error, Unavailable):
        _emit(level)(message, extra={**extra, "error": error.detail})
    else:
        _emit(level)(message, exc_info=error, extra=extra)


def _emit(level: Level) -> Callable[..., None]:
    return logger.warning if level == "WARNING" else logger.error
