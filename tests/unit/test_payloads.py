import dataclasses
import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from hookrelay.catalog import event_types
from hookrelay.payloads import DeliveryFormat, EventFacts, delivery_format, render, summary

ZWSP = "\u200b"

FACTS = EventFacts(
    event_id="0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b",
    event_name="ENVELOPE_SIGNED",
    event_time=datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
    team_id="team-uuid",
    sandbox=False,
    data={"workspaceUuid": "w", "envelopeUuid": "env-1", "recipientEmail": "j@example.com", "recipientName": "Jé Doe"},
    subscription_id="webhook-uuid",
    subscription_description="Contracts",
    description="A recipient has signed the envelope.",
)


def test_yousign_shape() -> None:
    rendered = render(FACTS, "yousign")
    assert rendered.content_type == "application/json"
    assert json.loads(rendered.body) == {
        "event_id": FACTS.event_id,
        "event_name": "ENVELOPE_SIGNED",
        "event_time": "1704067200",
        "subscription_id": "webhook-uuid",
        "subscription_description": "Contracts",
        "sandbox": False,
        "data": FACTS.data,
    }


def test_subnoto_json_shape_keeps_the_published_name() -> None:
    rendered = render(FACTS, "subnoto")
    assert rendered.content_type == "application/json"
    assert json.loads(rendered.body) == {
        "eventUuid": FACTS.event_id,
        "eventType": "ENVELOPE_SIGNED",
        "eventTime": 1704067200123,
        "webhookUuid": "webhook-uuid",
        "teamUuid": "team-uuid",
        "data": FACTS.data,
    }


def test_subnoto_form_carries_the_json_in_one_field() -> None:
    rendered = render(FACTS, "subnoto", "application/x-www-form-urlencoded")
    assert rendered.content_type == "application/x-www-form-urlencoded"
    fields = parse_qs(rendered.body.decode("ascii"), strict_parsing=True)
    assert list(fields) == ["payload"]
    assert json.loads(fields["payload"][0]) == json.loads(render(FACTS, "subnoto").body)


@pytest.mark.parametrize("delivery", ["yousign", "subnoto"])  # the chat formats show data as text
def test_a_number_json_cannot_carry_is_never_sent(delivery: DeliveryFormat) -> None:
    # An infinity (an event stored before ingest refused `1e400`) was rendered `Infinity`: receivers refuse it.
    with pytest.raises(ValueError, match="not JSON compliant"):
        render(dataclasses.replace(FACTS, data={**FACTS.data, "amount": float("inf")}), delivery)


def test_chat_formats_summarise_for_people() -> None:
    slack = json.loads(render(FACTS, "slack").body)
    assert slack["text"].startswith("ENVELOPE_SIGNED: A recipient has signed the envelope.")
    # What Slack shows as <j@example.com>, not a mailto: link.
    assert f"Recipient: Jé Doe &lt;j@{ZWSP}example.com&gt;" in slack["text"]
    assert slack["blocks"][0]["text"]["text"] == slack["text"]
    discord = json.loads(render(FACTS, "discord").body)
    assert discord["content"] == "ENVELOPE\\_SIGNED: A recipient has signed the envelope."
    assert "Envelope: env-1" in unescape_discord(discord["embeds"][0]["description"])
    assert discord["embeds"][0]["timestamp"] == "2024-01-01T00:00:00.123000+00:00"


@pytest.mark.parametrize("event_type", event_types(), ids=lambda event_type: event_type.name)
def test_every_catalog_sample_renders_in_every_format(event_type) -> None:  # type: ignore[no-untyped-def]
    facts = EventFacts(**{**FACTS.__dict__, "event_name": event_type.name, "data": event_type.sample})
    for delivery in ("yousign", "subnoto", "slack", "discord"):
        assert json.loads(render(facts, delivery).body)
    assert len(summary(facts)) <= 2900


@pytest.mark.parametrize(
    ("endpoint", "payload_format", "expected"),
    [
        ("https://hooks.slack.com/services/T/B/x", "yousign", "slack"),
        ("https://discord.com/api/webhooks/1/x", "subnoto", "discord"),
        ("https://discordapp.com/api/webhooks/1/x", "yousign", "discord"),
        # The URLs Discord's own clients copy: a versioned API path, the public test and canary builds' hosts.
        ("https://discord.com/api/v10/webhooks/1/x", "yousign", "discord"),
        ("https://ptb.discord.com/api/webhooks/1/x", "subnoto", "discord"),
        ("https://canary.discordapp.com/api/v9/webhooks/1/x", "yousign", "discord"),
        # Discord's Slack-compatible endpoint takes Slack's message; a token named slack is no such endpoint.
        ("https://discord.com/api/webhooks/1/x/slack", "yousign", "slack"),
        ("https://ptb.discord.com/api/v10/webhooks/1/x/slack/?wait=true", "subnoto", "slack"),
        ("https://discord.com/api/webhooks/1/slack", "yousign", "discord"),
        ("https://example.com/api/webhooks/1/x/slack", "yousign", "yousign"),
        ("https://discord.com/channels/1", "yousign", "yousign"),
        ("https://discord.com/api/v10/channels/1/messages", "yousign", "yousign"),
        ("https://example.com/hook", "subnoto", "subnoto"),
        # By the host the request goes to: full-width letters as their ASCII, a trailing dot.
        ("https://\uff44iscord.com/api/webhooks/1/x", "yousign", "discord"),
        ("https://hooks.slack.com./services/T/B/x", "subnoto", "slack"),
    ],
)
def test_delivery_format_by_host(endpoint: str, payload_format: str, expected: str) -> None:
    assert delivery_format(endpoint, payload_format) == expected  # type: ignore[arg-type]


HOSTILE = EventFacts(
    **{
        **FACTS.__dict__,
        "event_name": "signer.done",
        "data": {
            "signature_request": {"name": "<https://evil|app.yousign.com> [link](https://evil)", "status": "done"},
            "signer": {"info": {"first_name": "<!channel>", "last_name": "**bold** @everyone", "email": "a&b@x.io"}},
            "reason": "line one\n# heading\n> quote <@123> `code` ~~gone~~ ||spoiler|| _it_ \\",
        },
    }
)


def test_slack_escapes_every_value_so_nothing_pings_or_links() -> None:
    message = json.loads(render(HOSTILE, "slack").body)
    texts = [message["text"], message["blocks"][0]["text"]["text"], message["blocks"][1]["elements"][0]["text"]]
    for text in texts:
        assert "<" not in text and ">" not in text, text
        assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", ""), text
    text = message["text"]
    assert f"Signature request: &lt;https:{ZWSP}//evil|app.yousign.com&gt; [link](https:{ZWSP}//evil) (done)" in text
    assert f"Signer: &lt;!channel&gt; **bold** @{ZWSP}everyone &lt;a&amp;b@{ZWSP}x.io&gt;" in text
    # A value's line breaks cannot start lines of their own.
    assert f"Reason: line one # heading &gt; quote &lt;@{ZWSP}123&gt;" in text
    assert f"event `{HOSTILE.event_id}`" in texts[2]


def unescape_discord(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def test_discord_escapes_markdown_and_allows_no_mentions() -> None:
    message = json.loads(render(HOSTILE, "discord").body)
    assert message["allowed_mentions"] == {"parse": []}
    (embed,) = message["embeds"]
    description = embed["description"]
    # Every markdown character from the data is preceded by a backslash, so it shows as itself.
    assert re.search(r"(?<!\\)[*_~`|>#\[\]()<@]", re.sub(r"\\.", "", description)) is None, description
    assert unescape_discord(description).replace(ZWSP, "").split("\n") == [
        "Signature request: <https://evil|app.yousign.com> [link](https://evil) (done)",
        "Signer: <!channel> **bold** @everyone <a&b@x.io>",
        "Reason: line one # heading > quote <@123> `code` ~~gone~~ ||spoiler|| _it_ \\",
    ]
    assert unescape_discord(message["content"]) == "signer.done: " + HOSTILE.description


@pytest.mark.parametrize("name", [["a", "list"], {"a": 1}, 42, None, True])
def test_values_of_any_json_type_render(name: object) -> None:
    facts = EventFacts(**{**FACTS.__dict__, "data": {"signer": {"info": {"first_name": name, "email": name}}}})
    for delivery in ("slack", "discord"):
        assert json.loads(render(facts, delivery).body)


@pytest.mark.parametrize("delivery", ["slack", "discord"])
def test_escaping_never_pushes_a_message_past_the_chat_limits(delivery: DeliveryFormat) -> None:
    facts = EventFacts(**{**FACTS.__dict__, "data": {"reason": "<&>*_" * 2000}})
    message = json.loads(render(facts, delivery).body)
    if delivery == "slack":
        text = message["blocks"][0]["text"]["text"]
        assert len(text) <= 3000 and len(message["text"]) <= 3000
        assert not re.search(r"&[a-z]*$", text)  # no entity cut in half
    else:
        description = message["embeds"][0]["description"]
        assert len(description) <= 4096 and len(message["content"]) <= 2000
        assert not description.endswith("\\") or description.endswith("\\\\")


# A signer's name as in issue 25: on main, Slack and Discord posted its URL as a live link.
PHISHING = EventFacts(
    **{
        **FACTS.__dict__,
        "event_name": "signer.done",
        "description": "A signer has signed.",
        "data": {"signer": {"info": {"first_name": "Pay invoice at https://evil.example/login @here"}}},
    }
)

# The services' documented parsing of plain text. Slack ("Formatting text for app surfaces"): a mrkdwn text
# object without `"verbatim": true` auto-links URLs (and bare www. names and e-mail addresses), link-ifies
# channel names and parses mentions (@here, @channel, @everyone); with it, only `<...>` manual strings
# are parsed. Discord ("Markdown text 101", message formatting): any http(s):// URL is a link, `[text](url)`
# a masked link in embeds, and @everyone, @here, <@id>, <@!id>, <@&role>, <#channel> mentions (pinging
# only those `allowed_mentions` allows).
SLACK_AUTOMATIC = re.compile(r"[a-z][a-z0-9+.-]*://|\bwww\.|@(here|channel|everyone)\b|[\w.+-]@[\w-]+\.\w|#\w", re.I)
DISCORD_LINKS_AND_MENTIONS = re.compile(r"https?://|\[[^\]]*\]\(|@(everyone|here)\b|<(@[!&]?|#)\d+>", re.I)


def slack_links_or_mentions(message: dict[str, object]) -> list[str]:
    """What Slack would make a link or mention of in the message, by those rules."""
    found: list[str] = []
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    texts = [block["text"] for block in blocks if "text" in block]
    texts += [element for block in blocks for element in block.get("elements", [])]
    for text in texts:
        assert text["type"] == "plain_text" or text.get("verbatim") is True, text
        found += re.findall(r"<[^>]*>", text["text"])  # manual parsing strings, parsed even when verbatim
    # The top-level text (notifications, and clients without blocks) is parsed as mrkdwn, not verbatim.
    fallback = str(message["text"])
    found += re.findall(r"<[^>]*>", fallback) + [match.group(0) for match in SLACK_AUTOMATIC.finditer(fallback)]
    return found


def discord_links_or_mentions(message: dict[str, object]) -> list[str]:
    embeds = message["embeds"]
    assert isinstance(embeds, list)
    texts = [str(message["content"])] + [str(embed["description"]) for embed in embeds]
    # A backslashed punctuation character shows as itself and takes no part in markup or mentions.
    unmarked = [re.sub(r"\\.", "", text) for text in texts]
    return [match.group(0) for text in unmarked for match in DISCORD_LINKS_AND_MENTIONS.finditer(text)]


def test_slack_makes_no_link_or_mention_of_event_data() -> None:
    rendered = render(PHISHING, "slack").body.decode()
    headline = "signer.done: A signer has signed."
    signer = f"Signer: Pay invoice at https:{ZWSP}//evil.example/login @{ZWSP}here"
    context = f"event `{PHISHING.event_id}` at 2024-01-01T00:00:00.123000+00:00"
    assert json.loads(rendered) == {
        "text": f"{headline}\n{signer}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{headline}\n{signer}", "verbatim": True}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context, "verbatim": True}]},
        ],
    }
    assert slack_links_or_mentions(json.loads(rendered)) == []
    # Read by people, the value is unchanged: the zero-width space shows as nothing.
    assert "Pay invoice at https://evil.example/login @here" in rendered.replace(ZWSP, "")


def test_discord_makes_no_link_or_mention_of_event_data() -> None:
    rendered = render(PHISHING, "discord").body.decode()
    description = f"Signer: Pay invoice at https:{ZWSP}//evil.example/login \\@{ZWSP}here"
    assert json.loads(rendered) == {
        "content": "signer.done: A signer has signed.",
        "embeds": [
            {
                "title": "signer.done",
                "description": description,
                "timestamp": "2024-01-01T00:00:00.123000+00:00",
                "footer": {"text": f"event {PHISHING.event_id}"},
            }
        ],
        "allowed_mentions": {"parse": []},
    }
    assert discord_links_or_mentions(json.loads(rendered)) == []
    shown = unescape_discord(json.loads(rendered)["embeds"][0]["description"])
    assert shown.replace(ZWSP, "") == "Signer: Pay invoice at https://evil.example/login @here"


# A channel's name: Slack links #general in the top-level text, which is not verbatim.
CHANNEL = EventFacts(**{**PHISHING.__dict__, "data": {"signer": {"info": {"first_name": "see #general"}}}})


def test_slack_makes_no_channel_link_of_event_data() -> None:
    # Before: "Signer: see #general" in the message's text, a link to the channel.
    message = json.loads(render(CHANNEL, "slack").body)
    assert slack_links_or_mentions(message) == []
    assert f"Signer: see #{ZWSP}general" in message["text"]


@pytest.mark.parametrize("facts", [PHISHING, HOSTILE, CHANNEL, FACTS], ids=["phishing", "hostile", "channel", "plain"])
def test_no_event_data_becomes_a_link_or_mention_by_either_services_rules(facts: EventFacts) -> None:
    assert slack_links_or_mentions(json.loads(render(facts, "slack").body)) == []
    assert discord_links_or_mentions(json.loads(render(facts, "discord").body)) == []
