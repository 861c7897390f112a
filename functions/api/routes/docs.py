"""The routes of the API's own documentation: its OpenAPI document and Swagger UI (hookrelay.api_docs)."""

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from hookrelay import api_docs


def router(app: APIGatewayHttpResolver) -> APIGatewayHttpRouter:
    """The documentation of `app`'s routes, every one of them included by the first request for it."""
    routes = APIGatewayHttpRouter()

    @routes.get("/v3/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[str]:
        return Response(status_code=200, content_type="application/json", body=api_docs.openapi_json(app))

    @routes.get("/v3/docs", include_in_schema=False)
    def swagger_ui() -> Response[str]:
        return Response(status_code=200, content_type="text/html", body=api_docs.swagger_html(app))

    return routes
