"""The API's OpenAPI document and Swagger UI, configured by the first request for either.

powertools' `configure_openapi` and `enable_swagger` need its OpenAPI models (some hundred pydantic
models), which cost an API cold start about a third of an `import boto3`; request validation does
not use them, only these two routes do. So they are imported here, at the first of these requests,
not when the function starts. The document describes the routes, which are all registered by then.
"""

import functools
import json
from pathlib import Path

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from hookrelay import __version__, catalog

TITLE = "hookrelay"
# components/schemas/EventData.<event name>: the schema of each catalog event's `data`.
EVENT_DATA_SCHEMA_PREFIX = "EventData."
DESCRIPTION = "Webhook subscriptions and signed, retried delivery of e-signature events."
BEARER = (
    "An API key: `Authorization: Bearer <key>`; on the portal's routes, a portal session's token (hrp_...),"
    " which ends at its expiry, on DELETE /v3/portal-sessions/current, and with the API key that opened it."
)


@functools.cache
def openapi_json(app: APIGatewayHttpResolver) -> str:
    """The OpenAPI 3.1 document of the app's routes, as JSON."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer  # noqa: PLC0415 - see the docstring

    app.configure_openapi(
        title=TITLE,
        version=__version__,
        description=DESCRIPTION,
        security_schemes={"bearer": HTTPBearer(description=BEARER)},
        security=[{"bearer": []}],
    )
    document = json.loads(app.get_openapi_json_schema())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # OpenAPI 3.1 schemas are JSON Schema 2020-12, the catalog's dialect: listed as they are.
    schemas.update({EVENT_DATA_SCHEMA_PREFIX + each.name: each.data_schema for each in catalog.event_types()})
    return json.dumps(document)


@functools.cache
def swagger_html(app: APIGatewayHttpResolver) -> str:
    """Swagger UI for the document, with its script and style inline (as `enable_swagger` serves it)."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui  # noqa: PLC0415 - see the docstring

    assets = Path(swagger_ui.__file__).parent
    return swagger_ui.generate_swagger_html(
        # Escaped so that no `</script>` in a description can end the page's script early.
        openapi_json(app).replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        swagger_base_url="",
        oauth2_config=None,
    )
