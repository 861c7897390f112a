"""HTTP API Lambda authorizer (payload 2.0, simple responses): resolves the bearer key or portal token to its team.

It lets every request through and says in its context which team the credential belongs to (empty when
none) and, for a portal token, whether it is read-only, so that the API answers a missing or bad key with a
problem+json 401 and a portal token's writes out of its scope with a 403 (SPEC §2, §6).

The event and the answer are read and written as plain dicts: powertools' data classes package
imports every event class it has, a tenth of an `import boto3` at each cold start, for one header
here (payload 2.0 header names are lower case).
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hookrelay import wiring
from hookrelay.api_keys import authorizer_context, unavailable_context
from hookrelay.observability import log_failure, logger
from hookrelay.settings import get_settings
from hookrelay.store.retries import refused_for_now

authenticator = wiring.authenticator(get_settings())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        credential = authenticator.credential_of((event.get("headers") or {}).get("authorization"))
    except Exception as error:
        if not refused_for_now(error):
            log_failure("the credential could not be looked up; API Gateway answers 500", error)
            raise
        log_failure("the credential could not be looked up for now; the API answers 503", error)
        return {"isAuthorized": True, "context": unavailable_context()}
    logger.info(
        "authorized" if credential else "no valid API key or portal token",
        extra={"team_id": credential.team_id if credential else None, "portal": bool(credential and credential.portal)},
    )
    return {"isAuthorized": True, "context": authorizer_context(credential)}
