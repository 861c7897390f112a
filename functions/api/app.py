"""The hookrelay HTTP API: Yousign-compatible webhook subscriptions (SPEC §2); its routes are in routes/."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay import http_api, wiring
from hookrelay.observability import logger, tracer
from hookrelay.settings import get_settings
from routes import deliveries, docs, events, portal, problems, webhooks

settings = get_settings()
logic = wiring.api(settings)

# The OpenAPI document and Swagger UI are set up by their first request (hookrelay.api_docs says why).
app = APIGatewayHttpResolver(enable_validation=True)
# In this order: powertools matches a request against the routes, and the OpenAPI document lists them,
# in the order they were included.
app.include_router(webhooks.router(logic.subscriptions))
app.include_router(deliveries.router(logic.delivery_log))
app.include_router(events.router(logic.publisher))
app.include_router(portal.router(logic.portal_tokens, settings.portal_frame_ancestors))
app.include_router(docs.router(app))
problems.answer_exceptions(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return (
        http_api.early_refusal(event)
        or http_api.team_limit_refusal(event, logic.team_limiter)
        or app.resolve(http_api.as_plain_json(event), context)
    )
