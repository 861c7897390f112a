"""The webhook portal (SPEC §6): the page a platform hands its customers, and the sessions that open it.

A session is a link `<API base>/portal#token=<token>`: the token travels in the fragment, which browsers
never send, so it reaches no server log. The page is static (portal_page/, shipped in this package) and
reads the token from the fragment; it calls the /v3 routes with it as a bearer key (hookrelay.http_api
keeps a portal token to those routes, and a read-only one to reads).
"""

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hookrelay import clock
from hookrelay.api_keys import issue_portal_token
from hookrelay.errors import NotFound
from hookrelay.models.portal import PortalSession, PortalSessionInfo, PortalSessionRequest
from hookrelay.store.api_keys import ApiKeyStore, Credential

PAGE_PATH = "/portal"
_PAGE_DIR = Path(__file__).parent / "portal_page"
_PAGE = "index.html"
# The page's files by the name they are served under (/portal/<name>), with their media types.
_MEDIA_TYPES = {
    _PAGE: "text/html; charset=utf-8",
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Frame-ancestors values that X-Frame-Options can say too, for browsers that read only that header.
_FRAME_OPTIONS = {"'none'": "DENY", "'self'": "SAMEORIGIN"}


def _iso_from_epoch(seconds: int) -> str:
    return clock.iso(datetime.fromtimestamp(seconds, UTC))


def open_session(
    store: ApiKeyStore,
    team_id: str,
    request: PortalSessionRequest,
    api_base_url: str,
    opened_by: str | None = None,
) -> PortalSession:
    """A session for the team's portal, ended by its expiry, its sign-out, `hookrelay portal revoke`, or the
    revocation of the API key whose hash is `opened_by` (None: opened by an operator, with the CLI)."""
    issued = issue_portal_token(
        store,
        team_id,
        read_only=request.read_only,
        lifetime_seconds=request.expires_in,
        now=clock.utc_now().timestamp(),
        opened_by=opened_by,
    )
    return PortalSession(
        url=f"{api_base_url.rstrip('/')}{PAGE_PATH}#token={issued.token}",
        expires_at=_iso_from_epoch(issued.expires_at),
    )


def session_info(credential: Credential) -> PortalSessionInfo | None:
    """What the page shows of its link; None for an API key, which opens no portal session."""
    if not credential.portal or credential.expires_at is None:
        return None
    return PortalSessionInfo(
        team_id=credential.team_id, read_only=credential.read_only, expires_at=_iso_from_epoch(credential.expires_at)
    )


def end_session(store: ApiKeyStore, credential: Credential, token_hash: str) -> None:
    """Sign out: the portal token with that hash works no more (after warm authorizers' cache time).

    NotFound for an API key, which is no portal session, and for a session ended meanwhile."""
    if not (credential.portal and store.remove_portal_token(token_hash)):
        raise NotFound("Portal session")


@dataclass(frozen=True)
class PageFile:
    body: str
    media_type: str


def page_file(name: str = _PAGE) -> PageFile | None:
    """One of the page's files (the page itself by default); None for any other name."""
    media_type = _MEDIA_TYPES.get(name)
    # Only the page's own files are kept: the name comes from a URL anyone may send, without a key.
    return None if media_type is None else _read_page_file(name, media_type)


@functools.cache
def _read_page_file(name: str, media_type: str) -> PageFile:
    return PageFile((_PAGE_DIR / name).read_text(encoding="utf-8"), media_type)


def page_headers(frame_ancestors: str) -> dict[str, str]:
    """The page's security headers: no inline script, no referrer, framed only by `frame_ancestors`."""
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
        f" frame-ancestors {frame_ancestors}; base-uri 'none'; form-action 'none'"
    )
    headers = {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        # Small files, changed by a deployment: always revalidated, never stale beside each other.
        "Cache-Control": "no-cache",
    }
    frame_options = _FRAME_OPTIONS.get(frame_ancestors)
    if frame_options:
        headers["X-Frame-Options"] = frame_options
    return headers
