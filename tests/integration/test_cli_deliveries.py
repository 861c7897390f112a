"""`hookrelay deliveries list|show|retry` on the local stack (a moto server, as `--local` reaches it), every
`--json` output as one JSON document, and the one-line hint for a deployed stack without a region."""

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import records

from hookrelay import clock
from hookrelay.ingest import new_delivery
from hookrelay.queues import delivery_message
from hookrelay.records import Attempt, Delivery, Event
from hookrelay.store.deliveries import AttemptOutcome, DynamoDeliveryStore
from hookrelay.store.subscriptions import DynamoSubscriptionStore
from hookrelay_cli.main import main
from integration.cli_stacks import StackResources, deployed_stack, local_stack
from paths import REPO

TEAM = "acme"


@pytest.fixture(scope="module")
def stack() -> Iterator[StackResources]:
    with local_stack() as resources:
        yield resources


def run(capsys: pytest.CaptureFixture[str], stack: StackResources, *arguments: str) -> tuple[int, str, str]:
    code = main([*arguments, *stack.target_arguments()])
    out, err = capsys.readouterr()
    return code, out, err


def a_subscription(stack: StackResources, team: str = TEAM, **fields: Any) -> str:
    subscription = records.subscription(id=str(uuid.uuid4()), team_id=team, **fields)
    DynamoSubscriptionStore(stack.table("SubscriptionsTable")).create(subscription, records.TEAM_LIMIT)
    return subscription.id


def a_delivery(
    stack: StackResources, subscription_id: str, age_minutes: int, status_code: int | None = None, team: str = TEAM
) -> Delivery:
    """A delivery created `age_minutes` ago; with `status_code`, one attempt that answered it."""
    created = clock.utc_now() - timedelta(minutes=age_minutes)
    subscription = DynamoSubscriptionStore(stack.table("SubscriptionsTable")).get(team, subscription_id)
    assert subscription is not None
    event = Event(
        event_id=str(uuid.uuid4()),
        event_name="signer.done",
        event_time=clock.iso(created),
        team_id=team,
        data={"signer": {"id": "s-1"}},
    )
    delivery = dataclasses.replace(
        new_delivery(event, subscription), created_at=clock.iso(created), updated_at=clock.iso(created)
    )
    records.store_pending(stack.table("DeliveriesTable"), [delivery])
    if status_code:
        store = DynamoDeliveryStore(stack.table("DeliveriesTable"))
        attempt = Attempt(at=clock.iso(created), status_code=status_code, latency_ms=12, response_excerpt="body")
        outcome = AttemptOutcome("delivered" if status_code < 300 else "failed")
        store.record_attempt(delivery, 1, attempt, outcome)
    return delivery


def test_deliveries_list_pages_a_subscriptions_deliveries_newest_first_with_the_apis_filters(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription_id = a_subscription(stack)
    made = [
        a_delivery(stack, subscription_id, age, 500 if index in (1, 3) else 200)
        for index, age in enumerate((50, 40, 30, 20, 10))
    ]
    a_delivery(stack, a_subscription(stack), 5)  # another subscription's

    code, out, err = run(
        capsys, stack, "deliveries", "list", "--team", TEAM, "--subscription", subscription_id, "--json"
    )
    assert code == 0, err
    listed = json.loads(out)
    assert [item["id"] for item in listed["data"]] == [delivery.id for delivery in reversed(made)]
    assert listed["meta"] == {"next_cursor": None}

    code, out, err = run(
        capsys, stack, "deliveries", "list", "--team", TEAM, "--subscription", subscription_id, "--limit", "2", "--json"
    )
    first = json.loads(out)
    assert [item["id"] for item in first["data"]] == [made[4].id, made[3].id]
    cursor = first["meta"]["next_cursor"]
    assert cursor and f"--after {cursor}" in err
    code, out, _ = run(
        capsys,
        stack,
        *("deliveries", "list", "--team", TEAM, "--subscription", subscription_id, "--json"),
        *("--limit", "2", "--after", cursor),
    )
    assert [item["id"] for item in json.loads(out)["data"]] == [made[2].id, made[1].id]

    code, out, _ = run(
        capsys, stack, "deliveries", "list", "--team", TEAM, "--subscription", subscription_id, "--status", "failed"
    )
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "CREATED_AT", "EVENT_NAME", "STATUS", "ATTEMPT_COUNT", "NEXT_ATTEMPT_AT"]
    assert sorted(row.split()[0] for row in rows) == sorted([made[1].id, made[3].id])


def test_deliveries_list_without_a_subscription_merges_the_teams_newest(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    first, second = a_subscription(stack, team), a_subscription(stack, team)
    made = [
        a_delivery(stack, subscription_id, age, team=team)
        for subscription_id, age in ((first, 40), (second, 30), (first, 20), (second, 10))
    ]
    a_delivery(stack, a_subscription(stack), 5)  # another team's

    code, out, err = run(capsys, stack, "deliveries", "list", "--team", team, "--limit", "3", "--json")

    assert code == 0, err
    listed = json.loads(out)
    assert [item["id"] for item in listed["data"]] == [made[3].id, made[2].id, made[1].id] and set(listed) == {"data"}
    assert "3 delivery(ies), newest first of 2 subscription(s)" in err
    code, _, err = run(capsys, stack, "deliveries", "list", "--team", team, "--after", "x")
    assert code == 2 and err == "error: --after pages one subscription's deliveries: give its --subscription\n"


def test_deliveries_list_of_another_teams_subscription_is_not_found(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription_id = a_subscription(stack)
    assert run(capsys, stack, "deliveries", "list", "--team", "other", "--subscription", subscription_id) == (
        1,
        "",
        "error: Webhook subscription not found\n",
    )


def test_deliveries_retry_queues_the_next_attempt_once_as_the_api_does(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = a_delivery(stack, a_subscription(stack), 3, 500)
    stack.drain("DeliveryQueue")

    code, out, err = run(capsys, stack, "deliveries", "retry", delivery.id)

    assert code == 0, err
    retried = json.loads(out)
    assert (retried["id"], retried["status"], retried["attempt_count"]) == (delivery.id, "pending", 1)
    assert [json.loads(body) for body in stack.drain("DeliveryQueue")] == [
        json.loads(delivery_message(delivery.id, 2, team_id=TEAM).body)
    ]
    # Asked again before that attempt is made: refused, as the API answers 409.
    code, out, err = run(capsys, stack, "deliveries", "retry", delivery.id)
    assert (code, out) == (1, "") and err.startswith("error: A retry of this delivery is already queued")
    assert stack.drain("DeliveryQueue") == []


def test_deliveries_list_and_retry_on_a_deployed_stack_use_its_api_functions_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with deployed_stack() as deployed:
        subscription_id = a_subscription(deployed)
        delivery = a_delivery(deployed, subscription_id, 3, 500)

        code, out, err = run(capsys, deployed, "deliveries", "list", "--team", TEAM, "--subscription", subscription_id)
        assert code == 0, err
        assert [row.split()[:4] for row in out.splitlines()[1:]] == [
            [delivery.id, delivery.created_at, "signer.done", "failed"]
        ]
        code, out, err = run(capsys, deployed, "deliveries", "retry", delivery.id)
        assert code == 0, err
        assert [json.loads(body) for body in deployed.drain("DeliveryQueue")] == [
            json.loads(delivery_message(delivery.id, 2, team_id=TEAM).body)
        ]


def test_deliveries_retry_of_a_disabled_subscription_or_an_unknown_delivery_is_refused(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = a_delivery(stack, a_subscription(stack, enabled=False), 3, 500)
    code, _, err = run(capsys, stack, "deliveries", "retry", delivery.id)
    assert code == 1 and err.startswith("error: The webhook subscription is disabled")
    unknown = str(uuid.uuid4())
    assert run(capsys, stack, "deliveries", "retry", unknown) == (
        1,
        "",
        f"error: no delivery {unknown} in the local stack at {stack.endpoint_url}\n",
    )


def test_deliveries_show_gives_times_in_iso_8601_and_no_retry_bookkeeping(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = a_delivery(stack, a_subscription(stack), 3, 500)

    code, out, _ = run(capsys, stack, "deliveries", "show", delivery.id)

    assert code == 0
    shown = json.loads(out)
    assert shown["expires_at"] == clock.iso(clock.parse_moment(delivery.expires_at))
    assert "requested_attempt" not in shown and "event" not in shown


@pytest.mark.parametrize(
    "command",
    [
        ("keys", "list", "--team", "nobody"),
        ("dlq", "list"),
        ("dlq", "list", "--queue", "eventbridge"),
        ("deliveries", "list", "--team", TEAM, "--subscription", "SUBSCRIPTION"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_every_json_output_is_one_json_document_even_when_empty(
    stack: StackResources, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    subscription_id = a_subscription(stack)
    arguments = [subscription_id if argument == "SUBSCRIPTION" else argument for argument in command]
    for queue in ("DeliveryDeadLetterQueue", "EventBridgeDeadLetterQueue"):
        stack.drain(queue)

    code, out, err = run(capsys, stack, *arguments, "--json")
    assert code == 0, err
    empty = json.loads(out)
    assert isinstance(empty, dict) and [] in empty.values()

    # With two of whatever it lists: still one document, not a line each.
    if command[0] == "keys":
        for _ in range(2):
            run(capsys, stack, "keys", "create", "--team", "nobody")
    elif command[0] == "dlq":
        stack.send("DeliveryDeadLetterQueue" if len(command) == 2 else "EventBridgeDeadLetterQueue", "one", "two")
    else:
        for age in (2, 1):
            a_delivery(stack, subscription_id, age)
    code, out, err = run(capsys, stack, *arguments, "--json")
    assert code == 0, err
    assert [len(value) for value in json.loads(out).values() if isinstance(value, list)] == [2]


def test_a_deployed_stack_without_a_region_is_a_one_line_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    code = main(["deliveries", "show", str(uuid.uuid4())])

    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (
        "error: no AWS region for a deployed stack: pass --region REGION (or set AWS_REGION), or --local for the"
        " local stack (`hookrelay local up`)\n"
    )


def test_commands_that_read_the_template_print_no_sam_translator_warning(stack: StackResources) -> None:
    # The SAM transform's own metrics, left unpublished, made it warn on stderr at exit.
    (message_id,) = stack.send("DeliveryDeadLetterQueue", "a message")
    for command in (["dlq", "show", message_id], ["dlq", "redrive"]):
        result = subprocess.run(
            [sys.executable, "-m", "hookrelay_cli.main", *command, *stack.target_arguments()],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "unpublished metrics" not in result.stderr and "Traceback" not in result.stderr
