"""The routes of a subscription's delivery log (SPEC §6): list, read, send again, recover, send a test."""

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from hookrelay import http_api, pagination
from hookrelay.delivery_log import DeliveryLog
from hookrelay.models.common import Page
from hookrelay.models.deliveries import DeliveryDetail, RecoverRequest, Recovery, SampleEventRequest
from hookrelay.records import DeliveryStatus, DeliverySummary
from routes.openapi import ERRORS, ERRORS_BY_ID, WebhookId, problem, responses

_ERRORS_BY_DELIVERY = {
    **ERRORS,
    HTTPStatus.NOT_FOUND: problem("No such subscription in the caller's team, or no such delivery of it."),
}
_ERRORS_WHEN_SENDING = {
    **_ERRORS_BY_DELIVERY,
    HTTPStatus.CONFLICT: problem("The subscription is disabled, or the same send is already queued."),
}
DeliveryId = Annotated[str, Path(description="The delivery id: the `webhook-id` header of its requests.")]


def router(delivery_log: DeliveryLog) -> APIGatewayHttpRouter:
    routes = APIGatewayHttpRouter()

    @routes.get(
        "/v3/webhooks/<webhook_id>/deliveries",
        summary="List a webhook subscription's deliveries",
        description="Newest first. A page may hold fewer than `limit` items and still have a next_cursor.",
        tags=["Deliveries"],
        responses=responses(Page[DeliverySummary], ERRORS_BY_ID),
    )
    def list_deliveries(
        webhook_id: WebhookId,
        status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this status.")] = None,
        limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
        after: Annotated[str | None, Query(description="The next_cursor of the previous page.")] = None,
    ) -> Page[DeliverySummary]:
        return delivery_log.page(http_api.caller_team(routes.current_event), webhook_id, limit, after, status)

    @routes.get(
        "/v3/webhooks/<webhook_id>/deliveries/<delivery_id>",
        summary="Get a delivery: its request and every attempt",
        tags=["Deliveries"],
        responses=responses(DeliveryDetail, _ERRORS_BY_DELIVERY),
    )
    def get_delivery(webhook_id: WebhookId, delivery_id: DeliveryId) -> DeliveryDetail:
        return delivery_log.detail(http_api.caller_team(routes.current_event), webhook_id, delivery_id)

    @routes.post(
        "/v3/webhooks/<webhook_id>/deliveries/<delivery_id>/retry",
        status_code=202,
        summary="Send a delivery again now",
        description="A fresh attempt, with the same webhook-id; asking again before it is made is a 409.",
        tags=["Deliveries"],
        responses=responses(DeliverySummary, _ERRORS_WHEN_SENDING, HTTPStatus.ACCEPTED),
    )
    def retry_delivery(webhook_id: WebhookId, delivery_id: DeliveryId) -> DeliverySummary:
        return delivery_log.retry(http_api.caller_team(routes.current_event), webhook_id, delivery_id)

    @routes.post(
        "/v3/webhooks/<webhook_id>/recover",
        status_code=202,
        summary="Send again every failed delivery since a time",
        description=(
            "Each delivery that failed for good is tried again once, with its webhook-id. Calling again is"
            " safe: deliveries already on their way are not sent twice. A next_cursor means there is more."
        ),
        tags=["Deliveries"],
        responses=responses(Recovery, _ERRORS_WHEN_SENDING, HTTPStatus.ACCEPTED),
    )
    def recover_deliveries(webhook_id: WebhookId, body: Annotated[RecoverRequest, Body()]) -> Recovery:
        team_id = http_api.caller_team(routes.current_event)
        return delivery_log.recover(team_id, webhook_id, str(body.since), body.after)

    @routes.post(
        "/v3/webhooks/<webhook_id>/test",
        status_code=202,
        summary="Send a test event",
        description=(
            "The catalog sample of the event, delivered like any other and marked `X-Hookrelay-Test: true`;"
            " one at a time per subscription (409 while one is queued)."
        ),
        tags=["Deliveries"],
        responses=responses(DeliverySummary, _ERRORS_WHEN_SENDING, HTTPStatus.ACCEPTED),
    )
    def send_test_event(
        webhook_id: WebhookId, body: Annotated[SampleEventRequest | None, Body()] = None
    ) -> DeliverySummary:
        event_name = body.event_name if body else None
        return delivery_log.send_test(http_api.caller_team(routes.current_event), webhook_id, event_name)

    return routes
