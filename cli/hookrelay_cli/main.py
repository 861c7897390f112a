"""`hookrelay`: operate a deployed or local stack (API keys, dead-letter queues, deliveries) and run the
Docker-free local stack."""

import argparse
import contextlib
import dataclasses
import faulthandler
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoRegionError

from hookrelay.errors import DomainError, Unavailable
from hookrelay_cli.output import note, print_json, print_rows
from hookrelay_cli.target import Target, TargetError, add_target_arguments, default_template, target_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hookrelay.delivery_jobs import Job
    from hookrelay.delivery_log import DeliveryLog
    from hookrelay.records import Delivery
    from hookrelay.subscriptions import Subscriptions
    from hookrelay_cli.dlq import DeadLetterQueue, RedriveResult

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_AWS_PORT = 3001
DEFAULT_DLQ_LIST_MAX = 50
# The names of hookrelay_cli.dlq.DEAD_LETTER_QUEUES (which imports the hookrelay package: only when run).
DLQ_NAMES = ("delivery", "events", "eventbridge")
# The delivery statuses of hookrelay.records.DeliveryStatus (which imports pydantic: only when run).
DELIVERY_STATUSES = ("pending", "scheduled", "delivered", "failed")
HIDDEN_FIELDS = ("event", "requested_attempt")
EXIT_INTERRUPTED = 130
# sysexits.h's EX_TEMPFAIL: nothing was done, and the same command again later is expected to work.
EXIT_TRY_AGAIN = 75
# A `local up` stop that takes longer reports where its threads are (it normally takes a few seconds).
STOP_REPORT_SECONDS = 20


def _local_up(arguments: argparse.Namespace) -> int:
    from hookrelay_cli.local.console import WholeLines  # noqa: PLC0415 - local commands only
    from hookrelay_cli.local.dynamodb import AS_ON_AWS  # noqa: PLC0415 - moto loads only for local commands
    from hookrelay_cli.local.gateway import GatewayServer  # noqa: PLC0415
    from hookrelay_cli.local.moto_costs import keep_collections_short  # noqa: PLC0415
    from hookrelay_cli.local.stack import DEV_TEAM, LocalStack, local_aws  # noqa: PLC0415
    from hookrelay_cli.local.stop_signals import StopSignals  # noqa: PLC0415

    sys.stdout = WholeLines(sys.stdout)  # type: ignore[assignment]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    _quiet_libraries()
    keep_collections_short()
    stop_signals = StopSignals()
    stop_signals.install()
    with local_aws(arguments.host, arguments.aws_port, AS_ON_AWS) as aws_endpoint:
        stack = LocalStack.create(arguments.template, aws_endpoint, containers=True)
        key = stack.register_api_key(os.environ.get("HOOKRELAY_DEV_API_KEY"))
        server = GatewayServer(arguments.host, arguments.port, stack.gateway())
        server.start()
        for worker in stack.workers:
            worker.start()
        print(f"AWS endpoint (moto): {aws_endpoint}")
        api_base_url = f"http://{arguments.host}:{server.port}"
        print(f"Development API key (team {DEV_TEAM}): {key}")
        session = stack.open_portal_session(api_base_url)
        print(f"Webhook portal (team {DEV_TEAM}, until {session.expires_at}): {session.url}")
        print(f"hookrelay local stack ready on {api_base_url}", flush=True)
        stop_signals.wait()
        print("stopping", flush=True)
        # Should the stop hang, where every thread is goes to stderr (the process goes on stopping).
        faulthandler.dump_traceback_later(STOP_REPORT_SECONDS)
        server.stop()
        stack.stop()
    return 0


def _quiet_libraries() -> None:
    """Only the warnings of the libraries the local stack runs on: not moto's server's access log (werkzeug
    logs a line per AWS call), nor botocore's and urllib3's news."""
    for chatty in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _local_invoke(arguments: argparse.Namespace) -> int:
    from hookrelay_cli.local.dynamodb import AS_ON_AWS  # noqa: PLC0415 - moto loads only for local commands
    from hookrelay_cli.local.stack import LocalStack, local_aws  # noqa: PLC0415

    _quiet_libraries()
    event = json.loads(Path(arguments.event).read_text(encoding="utf-8")) if arguments.event else {}
    with local_aws(dynamodb_defaults=AS_ON_AWS) as aws_endpoint:
        stack = LocalStack.create(arguments.template, aws_endpoint, containers=True)
        # As with `sam local invoke`, the function's logs go to stderr and its result to stdout.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                result = stack.invoke(arguments.function, event)
            finally:
                stack.stop_containers()
    print(json.dumps(result, indent=2))
    return 0


def _keys_store(target: Target) -> Any:
    from hookrelay.store.api_keys import DynamoApiKeyStore  # noqa: PLC0415

    return DynamoApiKeyStore(target.table("ApiKeysTable"))


def _keys_create(arguments: argparse.Namespace) -> int:
    from hookrelay.api_keys import issue_key  # noqa: PLC0415

    issued = issue_key(_keys_store(target_of(arguments)), arguments.team)
    print_json({"api_key": issued.key, "key_id": issued.key_id, "team_id": issued.team_id})
    note("Store the key now: only its hash is kept, it cannot be shown again.")
    return 0


def _keys_list(arguments: argparse.Namespace) -> int:
    from hookrelay.api_keys import keys_of  # noqa: PLC0415

    keys = keys_of(_keys_store(target_of(arguments)), arguments.team)
    rows = [{"key_id": key.key_id, "created_at": key.created_at} for key in keys]
    print_rows(rows, KEY_COLUMNS, arguments.json, "keys")
    note(f"{len(keys)} key(s) of team {arguments.team}")
    return 0


def _keys_revoke(arguments: argparse.Namespace) -> int:
    from hookrelay.api_keys import UnknownKey, revoke_key  # noqa: PLC0415

    target = target_of(arguments)
    try:
        revoke_key(_keys_store(target), arguments.team, arguments.key_id)
    except UnknownKey as error:
        note(f"error: {error} in {target.description}")
        return 1
    print_json({"revoked": arguments.key_id, "team_id": arguments.team})
    note("Revoked. Warm authorizers may still accept it for HOOKRELAY_API_KEY_CACHE_SECONDS (60 s by default).")
    return 0


def _portal(arguments: argparse.Namespace) -> int:
    return _portal_revoke(arguments) if arguments.action == "revoke" else _portal_open(arguments)


def _portal_revoke(arguments: argparse.Namespace) -> int:
    from hookrelay.api_keys import revoke_portal_sessions  # noqa: PLC0415

    ended = revoke_portal_sessions(_keys_store(target_of(arguments)), arguments.team)
    print_json({"revoked_sessions": ended, "team_id": arguments.team})
    note(
        f"{ended} portal session(s) of team {arguments.team} ended. Warm authorizers may still accept one for"
        " HOOKRELAY_API_KEY_CACHE_SECONDS (60 s by default); a session opened in the last second may be missed"
        " (the team index lags its table): run this again to be sure."
    )
    return 0


def _portal_open(arguments: argparse.Namespace) -> int:
    from hookrelay.models.portal import PortalSessionRequest  # noqa: PLC0415
    from hookrelay.portal import open_session  # noqa: PLC0415

    target = target_of(arguments)
    api_base_url = arguments.api_url or target.api_url()
    request = PortalSessionRequest(read_only=arguments.read_only, expires_in=arguments.expires_in)
    session = open_session(_keys_store(target), arguments.team, request, api_base_url)
    print(session.url)
    access = "read-only" if arguments.read_only else "read-write"
    note(f"A {access} portal link for team {arguments.team}, until {session.expires_at}.")
    return 0


def _dead_letter_queue(arguments: argparse.Namespace) -> tuple[Target, Any, str]:
    """The target, an SQS client for it, and the URL of the DLQ --queue names."""
    from hookrelay_cli.dlq import DEAD_LETTER_QUEUES  # noqa: PLC0415

    target = target_of(arguments)
    return target, target.client("sqs"), target.queue_url(DEAD_LETTER_QUEUES[arguments.queue].logical_id)


def _dlq_list(arguments: argparse.Namespace) -> int:
    from hookrelay_cli.dlq import peek  # noqa: PLC0415

    _, sqs, queue_url = _dead_letter_queue(arguments)
    letters = peek(sqs, queue_url, limit=arguments.max)
    print_rows([letter.summary() for letter in letters], DLQ_COLUMNS, arguments.json, "messages")
    note(f"{len(letters)} message(s) on the {arguments.queue} DLQ shown, none removed")
    return 0


def _dlq_show(arguments: argparse.Namespace) -> int:
    from hookrelay_cli.dlq import Progress, find  # noqa: PLC0415

    target, sqs, queue_url = _dead_letter_queue(arguments)
    letter = find(sqs, queue_url, arguments.message_id, Progress(note))
    if letter is None:
        note(f"error: no message {arguments.message_id} on the {arguments.queue} DLQ of {target.description}")
        return 1
    shown = letter.full()
    job = letter.job
    if job:
        delivery = _delivery(target, job.delivery_id, [job])
        shown["delivery"] = (
            {
                name: value
                for name, value in dataclasses.asdict(delivery).items()
                if name in ("id", "status", "attempt_count", "attempts", "next_attempt_at")
            }
            if delivery
            else None
        )
        if delivery is None:
            note(f"no delivery record {job.delivery_id} (expired, or its event is gone)")
    print_json(shown)
    return 0


def _redrive_with_move_task(target: Target, queue: "DeadLetterQueue") -> "RedriveResult":
    from hookrelay_cli.dlq import Progress, redrive_with_move_task  # noqa: PLC0415

    try:
        return redrive_with_move_task(
            target.client("sqs"),
            target.queue_arn(queue.logical_id),
            target.queue_arn(queue.source_logical_id),
            Progress(note, every_seconds=0),  # a line per poll of the task
        )
    except KeyboardInterrupt:
        note("stopped watching; the move task goes on (aws sqs cancel-message-move-task stops it)")
        raise


def _redrive_by_copy(target: Target, queue: "DeadLetterQueue") -> "RedriveResult":
    from hookrelay_cli.dlq import Progress, redrive_by_copy  # noqa: PLC0415

    sqs = target.client("sqs")
    dlq_url, source_url = target.queue_url(queue.logical_id), target.queue_url(queue.source_logical_id)
    return redrive_by_copy(sqs, dlq_url, source_url, Progress(note))


def _dlq_redrive(arguments: argparse.Namespace) -> int:
    from hookrelay_cli.dlq import DEAD_LETTER_QUEUES  # noqa: PLC0415

    target = target_of(arguments)
    queue = DEAD_LETTER_QUEUES[arguments.queue]
    redrive = _redrive_with_move_task if queue.filled_by_sqs else _redrive_by_copy
    result = redrive(target, queue)
    print_json({"status": result.status, "moved": result.moved, "failed": result.failed})
    if result.reason:
        note(f"error: {result.reason}")
    return 0 if result.succeeded else 1


def _delivery(target: Target, delivery_id: str, jobs: "Sequence[Job]" = ()) -> "Delivery | None":
    """The delivery as recorded, or, not recorded yet, as the first attempt among `jobs` would record it."""
    from hookrelay.delivery_jobs import first_attempt_origins  # noqa: PLC0415
    from hookrelay.records import is_uuid  # noqa: PLC0415
    from hookrelay.store.deliveries import DynamoDeliveryStore  # noqa: PLC0415

    # Delivery ids are UUIDs; the table's other records (events, test slots) are not.
    if not is_uuid(delivery_id):
        return None
    store = DynamoDeliveryStore(target.table("DeliveriesTable"))
    return store.get_many([delivery_id], first_attempt_origins(jobs)).get(delivery_id)


def _named_delivery(arguments: argparse.Namespace) -> "tuple[Target, Delivery | None]":
    """The target, and the delivery its `delivery_id` names (None, said on stderr, when it has none)."""
    target = target_of(arguments)
    delivery = _delivery(target, arguments.delivery_id)
    if delivery is None:
        note(f"error: no delivery {arguments.delivery_id} in {target.description}")
    return target, delivery


def _deliveries_show(arguments: argparse.Namespace) -> int:
    from hookrelay import clock  # noqa: PLC0415

    _, delivery = _named_delivery(arguments)
    if delivery is None:
        return 1
    # The event's data stays out of an operator's terminal; requested_attempt is bookkeeping of retries
    # (attempt_count + 1 while one is asked for), which the attempts and next_attempt_at already show.
    shown = {name: value for name, value in dataclasses.asdict(delivery).items() if name not in HIDDEN_FIELDS}
    print_json({**shown, "expires_at": clock.iso(clock.parse_moment(delivery.expires_at))})
    return 0


def _api_logic(target: Target) -> "tuple[Subscriptions, DeliveryLog]":
    """The API's subscriptions and delivery log, wired to the target's resources as its ApiFunction is."""
    from hookrelay import wiring  # noqa: PLC0415
    from hookrelay.settings import Settings  # noqa: PLC0415

    settings = Settings.from_environment(target.function_environment("ApiFunction"))
    subscriptions = wiring.subscriptions(settings, tables=target.table_named)
    return subscriptions, wiring.delivery_log(settings, subscriptions, tables=target.table_named, clients=target.client)


def _deliveries_list(arguments: argparse.Namespace) -> int:
    from hookrelay.pagination import DEFAULT_LIMIT  # noqa: PLC0415

    if arguments.after and not arguments.subscription:
        note("error: --after pages one subscription's deliveries: give its --subscription")
        return 2
    subscriptions, log = _api_logic(target_of(arguments))
    limit = arguments.limit or DEFAULT_LIMIT
    if arguments.subscription:
        page = log.page(arguments.team, arguments.subscription, limit, arguments.after, arguments.status)
        listed = page.model_dump(mode="json")
        cursor = page.meta.next_cursor
        more = f"; more with --after {cursor}" if cursor else ""
    else:
        # The team's newest: each subscription's own newest, merged (the API lists one subscription at a time).
        subscription_ids = _subscription_ids(subscriptions, arguments.team)
        newest = [
            item
            for subscription_id in subscription_ids
            for item in log.page(arguments.team, subscription_id, limit, None, arguments.status).model_dump(
                mode="json"
            )["data"]
        ]
        listed = {"data": sorted(newest, key=lambda item: item["created_at"], reverse=True)[:limit]}
        more = f" of {len(subscription_ids)} subscription(s); page one of them with --subscription"
    if arguments.json:
        print_json(listed)
    else:
        print_rows(listed["data"], DELIVERY_COLUMNS, False, "data")
    note(f"{len(listed['data'])} delivery(ies), newest first{more}")
    return 0


def _subscription_ids(subscriptions: "Subscriptions", team_id: str) -> list[str]:
    from hookrelay.pagination import MAX_LIMIT  # noqa: PLC0415

    ids: list[str] = []
    after = None
    while True:
        page = subscriptions.page(team_id, MAX_LIMIT, after)
        ids.extend(subscription.id for subscription in page.data)
        after = page.meta.next_cursor
        if not after:
            return ids


def _deliveries_retry(arguments: argparse.Namespace) -> int:
    target, delivery = _named_delivery(arguments)
    if delivery is None:
        return 1
    retried = _api_logic(target)[1].retry(delivery.team_id, delivery.subscription_id, delivery.id)
    print_json(dataclasses.asdict(retried))
    note(f"Attempt {retried.attempt_count + 1} is on the delivery queue.")
    return 0


def _team_id(text: str) -> str:
    from hookrelay.api_keys import check_team_id  # noqa: PLC0415

    try:
        return check_team_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _page_size(text: str) -> int:
    from hookrelay.pagination import MAX_LIMIT  # noqa: PLC0415

    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


KEY_COLUMNS = ("key_id", "created_at")
DLQ_COLUMNS = ("message_id", "sent_at", "receive_count", "delivery_id", "attempt", "body")
DELIVERY_COLUMNS = ("id", "created_at", "event_name", "status", "attempt_count", "next_attempt_at")
JSON_HELP = "one JSON document instead of a table"
_TEXT = argparse.RawDescriptionHelpFormatter


def _group(commands: Any, name: str, summary: str, description: str) -> Any:
    """A command with subcommands (`hookrelay keys ...`); returns where to add them."""
    parser = commands.add_parser(name, help=summary, description=description, formatter_class=_TEXT)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def _command(
    commands: Any, name: str, summary: str, description: str, *, run: Any, on_a_stack: bool = True
) -> argparse.ArgumentParser:
    """A subcommand; one that acts on a stack takes --stack/--region or --local/--aws-endpoint."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description, formatter_class=_TEXT
    )
    if on_a_stack:
        add_target_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def _add_keys(commands: Any) -> None:
    key_commands = _group(commands, "keys", "manage API keys", "Create, list and revoke API keys.")
    create = _command(
        key_commands,
        "create",
        "create an API key for a team",
        "Create an API key for a team and print it (once: only its hash is stored).",
        run=_keys_create,
    )
    create.add_argument("--team", required=True, type=_team_id, help="the team the key acts for")
    listing = _command(
        key_commands,
        "list",
        "list a team's API keys",
        "List a team's API keys: their ids and creation times (never the keys, which are not kept).",
        run=_keys_list,
    )
    listing.add_argument("--team", required=True, type=_team_id, help="the team whose keys to list")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    revoke = _command(
        key_commands,
        "revoke",
        "revoke one of a team's API keys",
        "Delete one of a team's API keys (by the key_id that `keys create` and `keys list` show).\n\n"
        "Revocation takes effect within HOOKRELAY_API_KEY_CACHE_SECONDS (60 s by default): the\n"
        "authorizer caches key lookups in each warm container for that long.\n"
        "An id the team does not own is refused (exit code 1), whichever team owns it.",
        run=_keys_revoke,
    )
    revoke.add_argument("--team", required=True, type=_team_id, help="the team that owns the key")
    revoke.add_argument("key_id", help="the key's id (12 hex characters)")


def _portal_lifetime(text: str) -> int:
    from hookrelay.models.portal import PORTAL_SESSION_MAX_SECONDS, PORTAL_SESSION_MIN_SECONDS  # noqa: PLC0415

    if not text.isdigit() or not PORTAL_SESSION_MIN_SECONDS <= int(text) <= PORTAL_SESSION_MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds from {PORTAL_SESSION_MIN_SECONDS} to {PORTAL_SESSION_MAX_SECONDS}"
        )
    return int(text)


def _add_portal(commands: Any) -> None:
    portal = _command(
        commands,
        "portal",
        "print a link to a team's webhook portal, or end its portal sessions",
        "Open a portal session for a team and print its link (/portal#token=...): the page where the\n"
        "team's customers manage their webhooks and read every delivery. Anyone with the link acts for\n"
        "the team on its webhooks until it expires or signs out; only the token's hash is stored.\n\n"
        "`hookrelay portal revoke --team T` ends every portal session of the team instead (those opened\n"
        "with the API and with this command), within HOOKRELAY_API_KEY_CACHE_SECONDS (60 s by default).\n"
        "A session opened with POST /v3/portal-sessions also ends when the API key that opened it is revoked.",
        run=_portal,
    )
    portal.add_argument(
        "action",
        nargs="?",
        choices=("open", "revoke"),
        default="open",
        help="open a session and print its link (the default), or revoke every session of the team",
    )
    portal.add_argument("--team", required=True, type=_team_id, help="the team whose webhooks the portal shows")
    portal.add_argument("--read-only", action="store_true", help="the link shows everything and changes nothing")
    portal.add_argument(
        "--expires-in",
        metavar="SECONDS",
        type=_portal_lifetime,
        default=3600,
        help="how long the link works, 60-86400 (default %(default)s)",
    )
    portal.add_argument(
        "--api-url",
        metavar="URL",
        help="the API's base URL (default: the stack's ApiUrl output; with --local, http://127.0.0.1:3000)",
    )


def _add_dlq(commands: Any) -> None:
    queue_help = (
        "which dead-letter queue: delivery (failed delivery messages), events (events that ingest failed on"
        " five times) or eventbridge (events EventBridge could not put on the events queue)"
        " (default %(default)s)"
    )
    dlq_commands = _group(
        commands,
        "dlq",
        "inspect and redrive the dead-letter queues",
        "Inspect and redrive the dead-letter queues. A message lands in the delivery or events DLQ when its\n"
        "handling raised on every receive (maxReceiveCount, 5): a bug or bad data, not a failed HTTP\n"
        "delivery, which the retry schedule handles. An event lands in the eventbridge DLQ when EventBridge\n"
        "could not put it on the events queue (its ERROR_CODE and ERROR_MESSAGE attributes say why).",
    )
    listing = _command(
        dlq_commands,
        "list",
        "peek at the messages of a DLQ, leaving them there",
        "Show the messages of a dead-letter queue without removing any: each is received with a short\n"
        "visibility timeout and made visible again at once. For a delivery message: its delivery id and\n"
        "attempt; for anything else: the start of its body. The receive count includes these peeks.",
        run=_dlq_list,
    )
    listing.add_argument("--queue", choices=DLQ_NAMES, default="delivery", help=queue_help)
    listing.add_argument(
        "--max",
        metavar="N",
        type=_positive,
        default=DEFAULT_DLQ_LIST_MAX,
        help="show at most this many (default %(default)s)",
    )
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    show = _command(
        dlq_commands,
        "show",
        "one DLQ message in full, with its delivery's attempts",
        "Show one message of a dead-letter queue (body, attributes) without removing it and, for a\n"
        "delivery message, the delivery's status, attempt count and attempts. SQS cannot fetch a\n"
        "message by id, so this peeks through the queue until it finds it (progress on stderr).",
        run=_dlq_show,
    )
    show.add_argument("message_id", help="the SQS message id, as `dlq list` shows it")
    show.add_argument("--queue", choices=DLQ_NAMES, default="delivery", help=queue_help)
    redrive = _command(
        dlq_commands,
        "redrive",
        "move a DLQ's messages back to their queue",
        "Move every message of a dead-letter queue back to the queue it came from, to be processed again\n"
        "(once whatever made them fail is fixed). Deliveries are idempotent: a message for an attempt\n"
        "already made sends nothing.\n\n"
        'An SQS message move task (StartMessageMoveTask, as the console\'s "Start DLQ redrive"; the\n'
        "local stack runs them too), followed until it ends; Ctrl-C stops watching, not the task. SQS\n"
        "refuses a move task from the eventbridge DLQ (no queue's redrive policy names it: EventBridge,\n"
        "not an SQS queue, put its messages there): each of its events is sent to the events queue as\n"
        "the rule sends it (its body, without EventBridge's attributes), and deleted from the DLQ once\n"
        "sent. Progress on stderr; the final count on stdout (exit code 1 unless all moved).",
        run=_dlq_redrive,
    )
    redrive.add_argument("--queue", choices=DLQ_NAMES, default="delivery", help=queue_help)


def _add_deliveries(commands: Any) -> None:
    delivery_commands = _group(
        commands, "deliveries", "inspect and retry deliveries", "List, inspect and retry deliveries."
    )
    listing = _command(
        delivery_commands,
        "list",
        "a subscription's or a team's deliveries, newest first",
        "List a subscription's deliveries as GET /v3/webhooks/{id}/deliveries does: newest first, a page at\n"
        "a time (the next page's cursor on stderr, for --after), optionally only those in one status.\n"
        "Without --subscription, the team's newest across its subscriptions (one page, no cursor).\n"
        "The listing reads an index that lags its table by a moment, as DynamoDB's indexes do.",
        run=_deliveries_list,
    )
    listing.add_argument("--team", required=True, type=_team_id, help="the team that owns the subscription")
    listing.add_argument("--subscription", metavar="ID", help="the subscription's id (default: all of the team's)")
    listing.add_argument("--status", choices=DELIVERY_STATUSES, help="only deliveries in this status")
    listing.add_argument("--limit", metavar="N", type=_page_size, help="at most N (default 20, as the API)")
    listing.add_argument("--after", metavar="CURSOR", help="the page after this cursor (a previous page's next_cursor)")
    listing.add_argument("--json", action="store_true", help=JSON_HELP + ' ({"data": [...], "meta": {"next_cursor"}})')
    show = _command(
        delivery_commands,
        "show",
        "one delivery and its attempts",
        "Print a delivery record as JSON: status, attempts (time, URL, status code, latency, error,\n"
        "response excerpt), event name and id, subscription id, next_attempt_at, expires_at (when the\n"
        "record is deleted). Unknown id: exit code 1.",
        run=_deliveries_show,
    )
    show.add_argument("delivery_id", help="the delivery's id (the webhook-id header receivers get)")
    retry = _command(
        delivery_commands,
        "retry",
        "send a delivery again now",
        "Send a delivery again now, whatever its status, as POST .../deliveries/{id}/retry does: the next\n"
        "attempt goes on the delivery queue, with the same webhook-id. Prints the delivery (JSON).\n"
        "Exit code 1 for an unknown delivery, a disabled subscription, or a retry already queued.",
        run=_deliveries_retry,
    )
    retry.add_argument("delivery_id", help="the delivery's id (the webhook-id header receivers get)")


def _add_local(commands: Any) -> None:
    local_commands = _group(commands, "local", "the Docker-free local stack", "The Docker-free local stack.")
    up = _command(
        local_commands,
        "up",
        "start the local stack",
        "Start moto, create the template's resources, and serve the HTTP API until Ctrl-C.",
        run=_local_up,
        on_a_stack=False,
    )
    up.add_argument("--host", default=DEFAULT_HOST, help="address to serve on (default %(default)s)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP API port, 0 for any (default %(default)s)")
    up.add_argument("--aws-port", type=int, default=DEFAULT_AWS_PORT, help="moto port, 0 for any (default %(default)s)")
    up.add_argument("--template", type=Path, default=default_template(), help="the SAM template")
    invoke = _command(
        local_commands,
        "invoke",
        "invoke one function with an event, without Docker",
        "Invoke a function of template.yaml in a container process of its own, against a fresh local stack;"
        " print its result.",
        run=_local_invoke,
        on_a_stack=False,
    )
    invoke.add_argument("function", help="the function's logical id in template.yaml, e.g. ApiFunction")
    invoke.add_argument("-e", "--event", help="JSON file with the event (e.g. events/api-list-webhooks.json)")
    invoke.add_argument("--template", type=Path, default=default_template(), help="the SAM template")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookrelay", description=__doc__, formatter_class=_TEXT)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_keys(commands)
    _add_portal(commands)
    _add_dlq(commands)
    _add_deliveries(commands)
    _add_local(commands)
    return parser


def _one_line(error: Exception, arguments: argparse.Namespace) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        text = f"{error.operation_name}: {details.get('Message') or details.get('Code') or error}"
    elif isinstance(error, NoRegionError):
        text = (
            "no AWS region for a deployed stack: pass --region REGION (or set AWS_REGION), or --local for the"
            " local stack (`hookrelay local up`)"
        )
    else:
        text = str(error)
    if isinstance(error, EndpointConnectionError) and getattr(arguments, "local", False):
        text += " (is `hookrelay local up` running there?)"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    from hookrelay.settings import SettingsError  # noqa: PLC0415

    arguments = build_parser().parse_args(argv)
    try:
        return int(arguments.run(arguments))
    except (BotoCoreError, ClientError, TargetError, SettingsError) as error:
        note(f"error: {_one_line(error, arguments)}")
        return 1
    except DomainError as error:
        # What the API answers with a problem (hookrelay.http_api), the CLI answers with its sentence.
        note(f"error: {error.explanation}")
        return EXIT_TRY_AGAIN if isinstance(error, Unavailable) else 1
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
