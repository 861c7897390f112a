"""The hookrelay HTTP API: Yousign-compatible webhook subscriptions (SPEC §2)."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay import api_docs, catalog, http_api, pagination, portal, problems, wiring
from hookrelay.errors import DomainError, NotFound, Unavailable
from hookrelay.models import (
    DeliveryDetail,
    EventBatchIn,
    EventIn,
    EventType,
    Page,
    PageMeta,
    PortalSession,
    PortalSessionInfo,
    PortalSessionRequest,
    PublishedEvent,
    PublishedEvents,
    RecoverRequest,
    Recovery,
    SampleEventRequest,
    SecretRotation,
    SubscriptionPatch,
    SubscriptionSettings,
    SubscriptionView,
    SubscriptionWithSecret,
)
from hookrelay.observability import log_failure, logger, tracer
from hookrelay.publishing import NotPublished, new_event
from hookrelay.records import DeliveryStatus, DeliverySummary
from hookrelay.settings import get_settings

settings = get_settings()
logic = wiring.api(settings)

# The OpenAPI document and Swagger UI are set up by their first request (hookrelay.api_docs says why).
app = APIGatewayHttpResolver(enable_validation=True)


def _problem(description: str) -> OpenAPIResponse:
    """An OpenAPI response documented as an RFC 9457 problem."""
    return {"description": description, "content": {problems.PROBLEM_CONTENT_TYPE: {"model": problems.Problem}}}


def _responses(model: Any, errors: dict[int, Any], status: HTTPStatus = HTTPStatus.OK) -> dict[int, Any]:
    """A route's documented answers: its JSON result, then its problems (powertools documents the
    result from the return type only for a route without `responses`)."""
    return {status: {"description": status.phrase, "content": {"application/json": {"model": model}}}, **errors}


_ERRORS: dict[int, Any] = {
    **{
        status: _problem(status.phrase)
        for status in (
            HTTPStatus.BAD_REQUEST,
            HTTPStatus.UNAUTHORIZED,
            HTTPStatus.UNPROCESSABLE_ENTITY,
            # The team's limit (hookrelay.team_limits), with Retry-After.
            HTTPStatus.TOO_MANY_REQUESTS,
        )
    },
    HTTPStatus.SERVICE_UNAVAILABLE: _problem(
        "DynamoDB kept refusing the request (conflicting writes, throttling) after hookrelay's retries:"
        " send it again after Retry-After seconds."
    ),
}
_ERRORS_BY_ID = {**_ERRORS, HTTPStatus.NOT_FOUND: _problem("No subscription with this id in the caller's team.")}
WebhookId = Annotated[str, Path(description="The subscription id.")]


@app.post(
    "/v3/webhooks",
    status_code=201,
    summary="Create a webhook subscription",
    tags=["Webhooks"],
    responses=_responses(
        SubscriptionWithSecret,
        {**_ERRORS, HTTPStatus.CONFLICT: _problem("The team has as many subscriptions as it may.")},
        HTTPStatus.CREATED,
    ),
)
def create_webhook(body: Annotated[SubscriptionSettings, Body()]) -> SubscriptionWithSecret:
    return SubscriptionWithSecret.of(logic.subscriptions.create(http_api.caller_team(app), body))


@app.get(
    "/v3/webhooks",
    summary="List webhook subscriptions",
    tags=["Webhooks"],
    responses=_responses(Page[SubscriptionView], _ERRORS),
)
def list_webhooks(
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    after: Annotated[str | None, Query(description="The next_cursor of the previous page.")] = None,
) -> Page[SubscriptionView]:
    return logic.subscriptions.page(http_api.caller_team(app), limit, after)


@app.get(
    "/v3/webhooks/<webhook_id>",
    summary="Get a webhook subscription",
    tags=["Webhooks"],
    responses=_responses(SubscriptionView, _ERRORS_BY_ID),
)
def get_webhook(webhook_id: WebhookId) -> SubscriptionView:
    return SubscriptionView.of(logic.subscriptions.get(http_api.caller_team(app), webhook_id))


@app.patch(
    "/v3/webhooks/<webhook_id>",
    summary="Update a webhook subscription",
    tags=["Webhooks"],
    responses=_responses(SubscriptionView, _ERRORS_BY_ID),
)
def update_webhook(webhook_id: WebhookId, body: Annotated[SubscriptionPatch, Body()]) -> SubscriptionView:
    return SubscriptionView.of(logic.subscriptions.update(http_api.caller_team(app), webhook_id, body))


@app.delete(
    "/v3/webhooks/<webhook_id>",
    status_code=204,
    summary="Delete a webhook subscription",
    description="Deliveries still pending for it are dropped, not sent.",
    tags=["Webhooks"],
    # An empty `content`: no body (powertools would otherwise document the return type, a JSON null).
    responses={HTTPStatus.NO_CONTENT: {"description": "Deleted.", "content": {}}, **_ERRORS_BY_ID},
)
def delete_webhook(webhook_id: WebhookId) -> Response[None]:
    logic.subscriptions.delete(http_api.caller_team(app), webhook_id)
    return Response(status_code=204)


@app.post(
    "/v3/webhooks/<webhook_id>/secret/rotate",
    summary="Rotate a webhook subscription's secret",
    description=(
        "Returns the subscription with its new secret. The previous secret keeps signing, as a second"
        " Standard Webhooks `v1` signature, for the rotation overlap (24 h by default); the Yousign and"
        " Subnoto headers use the new secret at once."
    ),
    tags=["Webhooks"],
    responses=_responses(SubscriptionWithSecret, _ERRORS_BY_ID),
)
def rotate_secret(
    webhook_id: WebhookId, body: Annotated[SecretRotation | None, Body()] = None
) -> SubscriptionWithSecret:
    rotation = body or SecretRotation()
    return SubscriptionWithSecret.of(logic.subscriptions.rotate_secret(http_api.caller_team(app), webhook_id, rotation))


_ERRORS_BY_DELIVERY = {
    **_ERRORS,
    HTTPStatus.NOT_FOUND: _problem("No such subscription in the caller's team, or no such delivery of it."),
}
_ERRORS_WHEN_SENDING = {
    **_ERRORS_BY_DELIVERY,
    HTTPStatus.CONFLICT: _problem("The subscription is disabled, or the same send is already queued."),
}
DeliveryId = Annotated[str, Path(description="The delivery id: the `webhook-id` header of its requests.")]


@app.get(
    "/v3/webhooks/<webhook_id>/deliveries",
    summary="List a webhook subscription's deliveries",
    description="Newest first. A page may hold fewer than `limit` items and still have a next_cursor.",
    tags=["Deliveries"],
    responses=_responses(Page[DeliverySummary], _ERRORS_BY_ID),
)
def list_deliveries(
    webhook_id: WebhookId,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    after: Annotated[str | None, Query(description="The next_cursor of the previous page.")] = None,
) -> Page[DeliverySummary]:
    return logic.delivery_log.page(http_api.caller_team(app), webhook_id, limit, after, status)


@app.get(
    "/v3/webhooks/<webhook_id>/deliveries/<delivery_id>",
    summary="Get a delivery: its request and every attempt",
    tags=["Deliveries"],
    responses=_responses(DeliveryDetail, _ERRORS_BY_DELIVERY),
)
def get_delivery(webhook_id: WebhookId, delivery_id: DeliveryId) -> DeliveryDetail:
    return logic.delivery_log.detail(http_api.caller_team(app), webhook_id, delivery_id)


@app.post(
    "/v3/webhooks/<webhook_id>/deliveries/<delivery_id>/retry",
    status_code=202,
    summary="Send a delivery again now",
    description="A fresh attempt, with the same webhook-id; asking again before it is made is a 409.",
    tags=["Deliveries"],
    responses=_responses(DeliverySummary, _ERRORS_WHEN_SENDING, HTTPStatus.ACCEPTED),
)
def retry_delivery(webhook_id: WebhookId, delivery_id: DeliveryId) -> DeliverySummary:
    return logic.delivery_log.retry(http_api.caller_team(app), webhook_id, delivery_id)


@app.post(
    "/v3/webhooks/<webhook_id>/recover",
    status_code=202,
    summary="Send again every failed delivery since a time",
    description=(
        "Each delivery that failed for good is tried again once, with its webhook-id. Calling again is"
        " safe: deliveries already on their way are not sent twice. A next_cursor means there is more."
    ),
    tags=["Deliveries"],
    responses=_responses(Recovery, _ERRORS_WHEN_SENDING, HTTPStatus.ACCEPTED),
)
def recover_deliveries(webhook_id: WebhookId, body: Annotated[RecoverRequest, Body()]) -> Recovery:
    return logic.delivery_log.recover(http_api.caller_team(app), webhook_id, str(body.since), body.after)


@app.post(
    "/v3/webhooks/<webhook_id>/test",
    status_code=202,
    summary="Send a test event",
    description=(
        "The catalog sample of the event, delivered like any other and marked `X-Hookrelay-Test: true`;"
        " one at a time per subscription (409 while one is queued)."
    ),
    tags=["Deliveries"],
    responses=_responses(DeliverySummary, _ERRORS_WHEN_SENDING, HTTPStatus.ACCEPTED),
)
def send_test_event(
    webhook_id: WebhookId, body: Annotated[SampleEventRequest | None, Body()] = None
) -> DeliverySummary:
    event_name = body.event_name if body else None
    return logic.delivery_log.send_test(http_api.caller_team(app), webhook_id, event_name)


@app.get(
    "/v3/webhook-event-types",
    summary="List the event catalog",
    tags=["Events"],
    responses=_responses(Page[EventType], _ERRORS),
)
def list_event_types() -> Page[EventType]:
    http_api.caller_team(app)
    return Page[EventType](
        data=[EventType.of(entry) for entry in catalog.event_types()], meta=PageMeta(next_cursor=None)
    )


def _publishing_responses(model: Any, too_large: str) -> dict[int, Any]:
    not_published = {
        "description": "Not all accepted: publish those in `not_published` again, with the same event_id.",
        "content": {problems.PROBLEM_CONTENT_TYPE: {"model": NotPublished}},
    }
    errors = {
        **_ERRORS,
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE: _problem(too_large),
        HTTPStatus.SERVICE_UNAVAILABLE: not_published,
    }
    return _responses(model, errors, HTTPStatus.ACCEPTED)


@app.post(
    "/v3/events",
    status_code=202,
    summary="Publish an event",
    description=(
        "Accepted events are delivered to every matching subscription of the caller's team. When the"
        " deployment sets HOOKRELAY_VALIDATE_EVENT_DATA, `data` must follow its event's schema (the `schema`"
        " of GET /v3/webhook-event-types, also components/schemas/EventData.<event name> here): a 422"
        " names the path of each violation, e.g. `data.signer.id`."
    ),
    tags=["Events"],
    responses=_publishing_responses(PublishedEvent, "Body or event too large."),
)
def publish_event(body: Annotated[EventIn, Body()]) -> PublishedEvent:
    event = new_event(http_api.caller_team(app), body)
    logic.publisher.publish(event)
    _count_published(1)
    return PublishedEvent(event_id=event.event_id)


@app.post(
    http_api.BATCH_PATH,
    status_code=202,
    summary="Publish up to 10 events at once",
    description=(
        "Each event is what POST /v3/events takes, checked the same way; all are checked before any is"
        " published, and a refused event (422, 413) is named by its index, e.g. `events[3].event_name`, with"
        " nothing published. The accepted events go on the bus in one PutEvents call; the answer lists their"
        " event_ids in the order of the request. Entries the bus fails are tried again; a 503 lists in"
        " `published` and `not_published` the event_ids it did and did not accept: publish those not"
        " accepted again (or the whole batch: an event_id is its idempotency key)."
    ),
    tags=["Events"],
    responses=_publishing_responses(PublishedEvents, "Body, an event, or the events together too large."),
)
def publish_events(body: Annotated[EventBatchIn, Body()]) -> PublishedEvents:
    team_id = http_api.caller_team(app)
    events = [new_event(team_id, each) for each in body.events]
    logic.publisher.publish_batch(events)
    _count_published(len(events))
    return PublishedEvents(data=[PublishedEvent(event_id=event.event_id) for event in events])


def _count_published(count: int) -> None:
    # Most API requests publish no metric, so this one is flushed on its own.
    with single_metric(name="EventsPublished", unit=MetricUnit.Count, value=count):
        pass


@app.post(
    "/v3/portal-sessions",
    status_code=201,
    summary="Open a portal session",
    description=(
        "A short-lived link to the webhook portal for the caller's team, to hand to the team's customer"
        " (e.g. as an iframe's src). The token is in the URL's fragment, so it never reaches a server log;"
        " a `read_only` link can change nothing. Portal links cannot open portal sessions. A session ends at"
        " its expiry, when it signs out (DELETE /v3/portal-sessions/current), with `hookrelay portal revoke`,"
        " and when the API key that opened it is revoked."
    ),
    tags=["Portal"],
    responses=_responses(
        PortalSession, {**_ERRORS, HTTPStatus.FORBIDDEN: _problem("Asked with a portal link.")}, HTTPStatus.CREATED
    ),
)
def open_portal_session(body: Annotated[PortalSessionRequest | None, Body()] = None) -> PortalSession:
    request = body or PortalSessionRequest()
    return portal.open_session(
        logic.portal_tokens,
        http_api.caller_team(app),
        request,
        http_api.api_base_url(app),
        opened_by=http_api.caller_key_hash(app),
    )


@app.delete(
    http_api.CURRENT_PORTAL_SESSION_PATH,
    status_code=204,
    summary="End the portal session of the request's token (sign out)",
    description=(
        "The portal page's sign-out: its link works no more (warm authorizers may accept it for up to"
        " HOOKRELAY_API_KEY_CACHE_SECONDS, as a revoked key). Read-only links may sign out too; 404 for an API key."
    ),
    tags=["Portal"],
    responses={
        HTTPStatus.NO_CONTENT: {"description": "Signed out.", "content": {}},
        **_ERRORS,
        HTTPStatus.NOT_FOUND: _problem("The credential is an API key, or the session has ended."),
    },
)
def end_portal_session() -> Response[None]:
    portal.end_session(logic.portal_tokens, http_api.caller_credential(app), http_api.caller_key_hash(app))
    return Response(status_code=204)


@app.get(
    http_api.CURRENT_PORTAL_SESSION_PATH,
    summary="The portal session of the request's token",
    description="What the portal page shows of the link it was opened with; 404 for an API key.",
    tags=["Portal"],
    responses=_responses(
        PortalSessionInfo, {**_ERRORS, HTTPStatus.NOT_FOUND: _problem("The credential is an API key.")}
    ),
)
def current_portal_session() -> PortalSessionInfo:
    info = portal.session_info(http_api.caller_credential(app))
    if info is None:
        raise NotFound("Portal session (the request was made with an API key)")
    return info


@app.get(portal.PAGE_PATH, include_in_schema=False)
def portal_page() -> Response[str]:
    return _portal_file(portal.page_file())


@app.get(f"{portal.PAGE_PATH}/<name>", include_in_schema=False)
def portal_page_file(name: str) -> Response[str]:
    return _portal_file(portal.page_file(name))


def _portal_file(found: portal.PageFile | None) -> Response[str]:
    if found is None:
        raise NotFound("Portal file")
    return Response(
        status_code=200,
        content_type=found.media_type,
        body=found.body,
        headers=portal.page_headers(settings.portal_frame_ancestors),
    )


@app.get("/v3/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=api_docs.openapi_json(app))


@app.get("/v3/docs", include_in_schema=False)
def swagger_ui() -> Response[str]:
    return Response(status_code=200, content_type="text/html", body=api_docs.swagger_html(app))


@app.exception_handler(problems.ProblemError)
def answer_problem(error: problems.ProblemError) -> Response[str]:
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return (
        http_api.early_refusal(event)
        or http_api.team_limit_refusal(event, logic.team_limiter)
        or app.resolve(event, context)
    )
