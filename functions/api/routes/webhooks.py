"""The routes of a team's webhook subscriptions: create, list, read, update, delete, rotate the secret."""

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from hookrelay import http_api, pagination
from hookrelay.models.common import Page
from hookrelay.models.subscriptions import (
    SecretRotation,
    SubscriptionPatch,
    SubscriptionSettings,
    SubscriptionView,
    SubscriptionWithSecret,
)
from hookrelay.subscriptions import Subscriptions
from routes.openapi import ERRORS, ERRORS_BY_ID, WebhookId, problem, responses


def router(subscriptions: Subscriptions) -> APIGatewayHttpRouter:
    routes = APIGatewayHttpRouter()

    @routes.post(
        "/v3/webhooks",
        status_code=201,
        summary="Create a webhook subscription",
        tags=["Webhooks"],
        responses=responses(
            SubscriptionWithSecret,
            {**ERRORS, HTTPStatus.CONFLICT: problem("The team has as many subscriptions as it may.")},
            HTTPStatus.CREATED,
        ),
    )
    def create_webhook(body: Annotated[SubscriptionSettings, Body()]) -> SubscriptionWithSecret:
        return SubscriptionWithSecret.of(subscriptions.create(http_api.caller_team(routes.current_event), body))

    @routes.get(
        "/v3/webhooks",
        summary="List webhook subscriptions",
        tags=["Webhooks"],
        responses=responses(Page[SubscriptionView], ERRORS),
    )
    def list_webhooks(
        limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
        after: Annotated[str | None, Query(description="The next_cursor of the previous page.")] = None,
    ) -> Page[SubscriptionView]:
        return subscriptions.page(http_api.caller_team(routes.current_event), limit, after)

    @routes.get(
        "/v3/webhooks/<webhook_id>",
        summary="Get a webhook subscription",
        tags=["Webhooks"],
        responses=responses(SubscriptionView, ERRORS_BY_ID),
    )
    def get_webhook(webhook_id: WebhookId) -> SubscriptionView:
        return SubscriptionView.of(subscriptions.get(http_api.caller_team(routes.current_event), webhook_id))

    @routes.patch(
        "/v3/webhooks/<webhook_id>",
        summary="Update a webhook subscription",
        tags=["Webhooks"],
        responses=responses(SubscriptionView, ERRORS_BY_ID),
    )
    def update_webhook(webhook_id: WebhookId, body: Annotated[SubscriptionPatch, Body()]) -> SubscriptionView:
        team_id = http_api.caller_team(routes.current_event)
        return SubscriptionView.of(subscriptions.update(team_id, webhook_id, body))

    @routes.delete(
        "/v3/webhooks/<webhook_id>",
        status_code=204,
        summary="Delete a webhook subscription",
        description="Deliveries still pending for it are dropped, not sent.",
        tags=["Webhooks"],
        # An empty `content`: no body (powertools would otherwise document the return type, a JSON null).
        responses={HTTPStatus.NO_CONTENT: {"description": "Deleted.", "content": {}}, **ERRORS_BY_ID},
    )
    def delete_webhook(webhook_id: WebhookId) -> Response[None]:
        subscriptions.delete(http_api.caller_team(routes.current_event), webhook_id)
        return Response(status_code=204)

    @routes.post(
        "/v3/webhooks/<webhook_id>/secret/rotate",
        summary="Rotate a webhook subscription's secret",
        description=(
            "Returns the subscription with its new secret. The previous secret keeps signing, as a second"
            " Standard Webhooks `v1` signature, for the rotation overlap (24 h by default); the Yousign and"
            " Subnoto headers use the new secret at once."
        ),
        tags=["Webhooks"],
        responses=responses(SubscriptionWithSecret, ERRORS_BY_ID),
    )
    def rotate_secret(
        webhook_id: WebhookId, body: Annotated[SecretRotation | None, Body()] = None
    ) -> SubscriptionWithSecret:
        team_id = http_api.caller_team(routes.current_event)
        return SubscriptionWithSecret.of(subscriptions.rotate_secret(team_id, webhook_id, body or SecretRotation()))

    return routes
