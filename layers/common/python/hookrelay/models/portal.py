"""The bodies of the webhook portal's sessions (SPEC §6)."""

from pydantic import BaseModel, Field

from hookrelay.models.common import ANSWER, REQUEST_BODY

PORTAL_SESSION_MIN_SECONDS = 60
PORTAL_SESSION_MAX_SECONDS = 86_400


class PortalSessionRequest(BaseModel):
    """The body of POST /v3/portal-sessions."""

    model_config = REQUEST_BODY

    read_only: bool = Field(False, description="The link shows everything and can change nothing.")
    expires_in: int = Field(
        3600,
        ge=PORTAL_SESSION_MIN_SECONDS,
        le=PORTAL_SESSION_MAX_SECONDS,
        description="Seconds the link works for.",
    )


class PortalSession(BaseModel):
    model_config = ANSWER

    url: str = Field(description="The portal page; its token is in the fragment, which never reaches a server.")
    expires_at: str


class PortalSessionInfo(BaseModel):
    """What the portal page shows of the link it was opened with."""

    model_config = ANSWER

    team_id: str
    read_only: bool
    expires_at: str
