import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from hookrelay.catalog import event_types
from hookrelay.payloads import EventFacts, delivery_format, render, summary

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


def test_chat_formats_summarise_for_people() -> None:
    slack = json.loads(render(FACTS, "slack").body)
    assert slack["text"].startswith("ENVELOPE_SIGNED: A recipient has signed the envelope.")
    assert "Recipient: Jé Doe &lt;j@example.com&gt;" in slack["text"]  # what Slack shows as <j@example.com>
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
        ("https://discord.com/channels/1", "yousign", "yousign"),
        ("https://example.com/hook", "subnoto", "subnoto"),
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
    assert "Signature request: &lt;https://evil|app.yousign.com&gt; [link](https://evil) (done)" in text
    assert "Signer: &lt;!channel&gt; **bold** @everyone &lt;a&amp;b@x.io&gt;" in text
    # A value's line breaks cannot start lines of their own.
    assert "Reason: line one # heading &gt; quote &lt;@123&gt;" in text
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
    assert unescape_discord(description).split("\n") == [
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
def test_escaping_never_pushes_a_message_past_the_chat_limits(delivery: str) -> None:
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
