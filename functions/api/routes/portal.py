"""The routes of the webhook portal (SPEC §6): its sessions, and the page they open."""

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from hookrelay import http_api, portal
from hookrelay.errors import NotFound
from hookrelay.models.portal import PortalSession, PortalSessionInfo, PortalSessionRequest
from hookrelay.store.api_keys import ApiKeyStore
from routes.openapi import ERRORS, problem, responses


def router(tokens: ApiKeyStore, frame_ancestors: str) -> APIGatewayHttpRouter:
    """The portal's routes: its sessions' tokens kept in `tokens`, its page framed by `frame_ancestors` only."""
    routes = APIGatewayHttpRouter()

    @routes.post(
        "/v3/portal-sessions",
        status_code=201,
        summary="Open a portal session",
        description=(
            "A short-lived link to the webhook portal for the caller's team, to hand to the team's customer"
            " (e.g. as an iframe's src). The token is in the URL's fragment, so it never reaches a server log;"
            " a `read_only` link can change nothing. Portal links cannot open portal sessions. A session ends"
            " at its expiry, when it signs out (DELETE /v3/portal-sessions/current), with `hookrelay portal"
            " revoke`, and when the API key that opened it is revoked."
        ),
        tags=["Portal"],
        responses=responses(
            PortalSession, {**ERRORS, HTTPStatus.FORBIDDEN: problem("Asked with a portal link.")}, HTTPStatus.CREATED
        ),
    )
    def open_portal_session(body: Annotated[PortalSessionRequest | None, Body()] = None) -> PortalSession:
        request = routes.current_event
        return portal.open_session(
            tokens,
            http_api.caller_team(request),
            body or PortalSessionRequest(),
            http_api.api_base_url(request),
            opened_by=http_api.caller_key_hash(request),
        )

    @routes.delete(
        http_api.CURRENT_PORTAL_SESSION_PATH,
        status_code=204,
        summary="End the portal session of the request's token (sign out)",
        description=(
            "The portal page's sign-out: its link works no more (warm authorizers may accept it for up to"
            " HOOKRELAY_API_KEY_CACHE_SECONDS, as a revoked key). Read-only links may sign out too; 404 for an"
            " API key."
        ),
        tags=["Portal"],
        responses={
            HTTPStatus.NO_CONTENT: {"description": "Signed out.", "content": {}},
            **ERRORS,
            HTTPStatus.NOT_FOUND: problem("The credential is an API key, or the session has ended."),
        },
    )
    def end_portal_session() -> Response[None]:
        request = routes.current_event
        portal.end_session(tokens, http_api.caller_credential(request), http_api.caller_key_hash(request))
        return Response(status_code=204)

    @routes.get(
        http_api.CURRENT_PORTAL_SESSION_PATH,
        summary="The portal session of the request's token",
        description="What the portal page shows of the link it was opened with; 404 for an API key.",
        tags=["Portal"],
        responses=responses(
            PortalSessionInfo, {**ERRORS, HTTPStatus.NOT_FOUND: problem("The credential is an API key.")}
        ),
    )
    def current_portal_session() -> PortalSessionInfo:
        info = portal.session_info(http_api.caller_credential(routes.current_event))
        if info is None:
            raise NotFound("Portal session (the request was made with an API key)")
        return info

    @routes.get(portal.PAGE_PATH, include_in_schema=False)
    def portal_page() -> Response[str]:
        return _portal_file(portal.page_file(), frame_ancestors)

    @routes.get(f"{portal.PAGE_PATH}/<name>", include_in_schema=False)
    def portal_page_file(name: str) -> Response[str]:
        return _portal_file(portal.page_file(name), frame_ancestors)

    return routes


def _portal_file(found: portal.PageFile | None, frame_ancestors: str) -> Response[str]:
    if found is None:
        raise NotFound("Portal file")
    return Response(
        status_code=200,
        content_type=found.media_type,
        body=found.body,
        headers=portal.page_headers(frame_ancestors),
    )
