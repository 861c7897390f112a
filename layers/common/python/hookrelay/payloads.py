"""How a delivery is rendered for its endpoint (SPEC §4)."""

from typing import Literal
from urllib.parse import urlsplit

PayloadFormat = Literal["yousign", "subnoto"]
DeliveryFormat = Literal["yousign", "subnoto", "slack", "discord"]

_DISCORD_HOSTS = frozenset({"discord.com", "discordapp.com"})


def delivery_format(endpoint: str, payload_format: PayloadFormat) -> DeliveryFormat:
    """Slack and Discord incoming webhooks get their own message shapes; others the chosen format."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host in _DISCORD_HOSTS and parts.path.startswith("/api/webhooks/"):
        return "discord"
    return payload_format
