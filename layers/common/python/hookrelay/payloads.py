"""How a delivery is rendered for its endpoint (SPEC §4): the bytes sent, rendered once, and signed."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from hookrelay import json_text
from hookrelay.host_names import ascii_host

PayloadFormat = Literal["yousign", "subnoto"]
ChatService = Literal["slack", "discord"]
DeliveryFormat = Literal["yousign", "subnoto", "slack", "discord"]

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
_DISCORD_HOSTS = frozenset(
    f"{channel}{domain}" for channel in ("", "ptb.", "canary.") for domain in ("discord.com", "discordapp.com")
)
# Discord's incoming webhooks, with or without the API's version: /api/webhooks/<id>/<token>,
# /api/v10/webhooks/<id>/<token>.
_DISCORD_WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/")
# After the token, Discord's endpoints that take another service's payload: Slack's, or GitHub's events.
_DISCORD_COMPATIBLE_PATH = re.compile(r"/webhooks/[^/]+/[^/]+/(?P<service>slack|github)/?$")
# Slack's and Discord's own limits, which escaping may approach, are applied after it.
_SUMMARY_LIMIT = 2900


def chat_service(endpoint: str) -> ChatService | None:
    """Whose incoming webhook the endpoint is, Slack's or Discord's, if either's: by the host the request
    goes to (a name written in full-width letters goes to, and is read as, its ASCII form)."""
    parts = urlsplit(endpoint)
    try:
        host = ascii_host(parts.hostname or "").lower().rstrip(".")
    except ValueError:  # no host a request could go to
        return None
    if host == "hooks.slack.com":
        return "slack"
    if host in _DISCORD_HOSTS and _DISCORD_WEBHOOK_PATH.match(parts.path):
        return "discord"
    return None


def delivery_format(endpoint: str, payload_format: PayloadFormat) -> DeliveryFormat:
    """Slack and Discord incoming webhooks get their own message shapes (Discord's Slack-compatible one,
    `.../<token>/slack`, Slack's); others the chosen format."""
    if _discord_compatible_with(endpoint) == "slack":
        return "slack"
    return chat_service(endpoint) or payload_format


def no_message_for(endpoint: str) -> str | None:
    """Why hookrelay has no message the endpoint takes, if it has none, in words fit for an API error."""
    if _discord_compatible_with(endpoint) == "github":
        return (
            "is Discord's GitHub-compatible webhook (.../github), which takes GitHub's events only, and hookrelay"
            " cannot send them: use the webhook's URL without /github (Discord messages), or with /slack"
        )
    return None


def _discord_compatible_with(endpoint: str) -> str | None:
    """Whose payload a Discord webhook's endpoint takes instead of Discord's (`slack`, `github`), if another's."""
    match = _DISCORD_COMPATIBLE_PATH.search(urlsplit(endpoint).path)
    return match["service"] if match and chat_service(endpoint) == "discord" else None


@dataclass(frozen=True)
class EventFacts:
    """What a payload needs of an event and its subscription."""

    event_id: str
    event_name: str
    event_time: datetime
    team_id: str
    sandbox: bool
    data: dict[str, Any]
    subscription_id: str
    subscription_description: str | None
    description: str


@dataclass(frozen=True)
class RenderedPayload:
    body: bytes
    content_type: str


def _json(value: Any) -> bytes:
    return json_text.dumps(value).encode("utf-8")


def render(facts: EventFacts, delivery: DeliveryFormat, content_type: str = JSON) -> RenderedPayload:
    if delivery == "yousign":
        return RenderedPayload(_json(yousign_payload(facts)), JSON)
    if delivery == "subnoto":
        payload = _json(subnoto_payload(facts))
        if content_type == FORM:
            return RenderedPayload(urlencode({"payload": payload.decode("utf-8")}).encode("ascii"), FORM)
        return RenderedPayload(payload, JSON)
    if delivery == "slack":
        return RenderedPayload(_json(slack_payload(facts)), JSON)
    return RenderedPayload(_json(discord_payload(facts)), JSON)


def yousign_payload(facts: EventFacts) -> dict[str, Any]:
    return {
        "event_id": facts.event_id,
        "event_name": facts.event_name,
        "event_time": str(int(facts.event_time.timestamp())),
        "subscription_id": facts.subscription_id,
        "subscription_description": facts.subscription_description,
        "sandbox": facts.sandbox,
        "data": facts.data,
    }


def subnoto_payload(facts: EventFacts) -> dict[str, Any]:
    return {
        "eventUuid": facts.event_id,
        "eventType": facts.event_name,
        "eventTime": int(facts.event_time.timestamp() * 1000),
        "webhookUuid": facts.subscription_id,
        "teamUuid": facts.team_id,
        "data": facts.data,
    }


# Where Slack or Discord would start a link or a mention in plain text: a URL's `scheme:` before `//`, a
# `www.` (Slack links bare www names), `@` (@here, @everyone, @channel, e-mail addresses, which Slack
# links as mailto:) and a `#` before a channel name's first character (Slack links #general). A zero-width
# space put there shows as nothing, so a value reads as sent, and neither service's parser reads a URL,
# address, mention or channel name across it.
_LINK_OR_MENTION_STARTS = re.compile(r"(?<=[a-z0-9+.-]:)(?=//)|(?<=\bwww)(?=\.)|(?<=@)|(?<=#)(?=[\w-])", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"


def _text(value: Any) -> str:
    """A value from event data on one line (crafted line breaks cannot start lines of their own), with
    every start of a link or mention broken by a zero-width space."""
    return _LINK_OR_MENTION_STARTS.sub(_ZERO_WIDTH_SPACE, " ".join(str(value).split()))


def _person(name: str, email: str) -> str:
    return f"{name} <{email}>" if name and email else name or email


def _details(data: dict[str, Any]) -> list[str]:
    """The facts a person wants first, picked from the e-signature payloads of the catalog."""
    details = []
    request = data.get("signature_request")
    if isinstance(request, dict) and request.get("name"):
        status = _text(request.get("status", "unknown status"))
        details.append(f"Signature request: {_text(request['name'])} ({status})")
    for role in ("signer", "approver"):
        person = data.get(role)
        info = person.get("info") if isinstance(person, dict) else None
        if isinstance(info, dict):
            name = " ".join(_text(part) for part in (info.get("first_name"), info.get("last_name")) if part)
            if who := _person(name, _text(info.get("email") or "")):
                details.append(f"{role.capitalize()}: {who}")
    if recipient := _person(_text(data.get("recipientName") or ""), _text(data.get("recipientEmail") or "")):
        details.append(f"Recipient: {recipient}")
    if data.get("envelopeUuid"):
        details.append(f"Envelope: {_text(data['envelopeUuid'])}")
    if data.get("reason"):
        details.append(f"Reason: {_text(data['reason'])}")
    return details


def summary(facts: EventFacts) -> str:
    """The event for people, as plain text: a headline, then one line per detail."""
    lines = [f"{facts.event_name}{' (sandbox)' if facts.sandbox else ''}: {facts.description}", *_details(facts.data)]
    return "\n".join(lines)[:_SUMMARY_LIMIT]


# Slack reads &, < and > as markup (mentions such as <!channel>, links such as <url|text>); nothing else.
_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Discord shows a backslashed punctuation character as itself: no emphasis, spoilers, code, quotes,
# headings, lists, masked links [text](url) or mention syntax <@id>.
_DISCORD_ESCAPES = {character: "\\" + character for character in "\\*_~`|>#-[]()<@"}
_SLACK_SECTION_LIMIT = 3000
_DISCORD_DESCRIPTION_LIMIT = 4096
_DISCORD_CONTENT_LIMIT = 2000


def _escaped(text: str, escapes: dict[str, str], limit: int) -> str:
    """Plain text as markup that shows it literally, cut to `limit` characters between two escapes."""
    pieces, size = [], 0
    for character in text:
        piece = escapes.get(character, character)
        size += len(piece)
        if size > limit:
            break
        pieces.append(piece)
    return "".join(pieces)


def slack_payload(facts: EventFacts) -> dict[str, Any]:
    text = _escaped(summary(facts), _SLACK_ESCAPES, _SLACK_SECTION_LIMIT)
    context = _escaped(f"event `{facts.event_id}` at {facts.event_time.isoformat()}", _SLACK_ESCAPES, 500)
    # verbatim: Slack makes no link, channel name or mention of plain text in it (only of `<...>`, escaped).
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context, "verbatim": True}]},
        ],
    }


def discord_payload(facts: EventFacts) -> dict[str, Any]:
    headline, *details = summary(facts).split("\n")
    description = "\n".join(details) or facts.description
    return {
        "content": _escaped(headline, _DISCORD_ESCAPES, _DISCORD_CONTENT_LIMIT),
        "embeds": [
            {
                "title": facts.event_name,
                "description": _escaped(description, _DISCORD_ESCAPES, _DISCORD_DESCRIPTION_LIMIT),
                "timestamp": facts.event_time.isoformat(),
                "footer": {"text": f"event {facts.event_id}"},
            }
        ],
        # Not even a mention the escaping missed may ping anyone.
        "allowed_mentions": {"parse": []},
    }
