"""Every exception a route raises, answered in one place: as an RFC 9457 problem (hookrelay.http_api)."""

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from hookrelay import http_api
from hookrelay.errors import DomainError, Unavailable
from hookrelay.observability import log_failure
from hookrelay.problems import ProblemError


def answer_exceptions(app: APIGatewayHttpResolver) -> None:
    """Register `app`'s exception handlers (a 405 names the methods its routes take on the path)."""

    @app.exception_handler(ProblemError)
    def answer_problem(error: ProblemError) -> Response[str]:
        return http_api.problem_response(error)

    @app.exception_handler(DomainError)
    def answer_refusal(error: DomainError) -> Response[str]:
        if isinstance(error, Unavailable):
            return _outage(error)
        return http_api.problem_response(http_api.problem_of(error))

    @app.exception_handler(RequestValidationError)
    def answer_invalid_request(error: RequestValidationError) -> Response[str]:
        return http_api.problem_response(http_api.from_validation_errors(error.errors()))

    @app.exception_handler(NotFoundError)
    def answer_unknown_route(_: NotFoundError) -> Response[str]:
        return http_api.route_not_found(app)

    @app.exception_handler(Exception)
    def answer_outage(error: Exception) -> Response[str]:
        return _outage(error)


def _outage(error: Exception) -> Response[str]:
    log_failure("request failed", error)
    return http_api.problem_response(http_api.outage(error))
