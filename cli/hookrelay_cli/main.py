"""`hookrelay`: API keys for a deployed or local stack, and the Docker-free local stack."""

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_AWS_PORT = 3001
DEFAULT_STACK = "hookrelay"


def _default_template() -> Path:
    here = Path.cwd() / "template.yaml"
    return here if here.exists() else Path(__file__).resolve().parents[2] / "template.yaml"


def _local_up(arguments: argparse.Namespace) -> int:
    from hookrelay_cli.local.gateway import GatewayServer  # noqa: PLC0415 - moto loads only for local commands
    from hookrelay_cli.local.stack import DEV_TEAM, LocalStack, local_aws  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for chatty in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with local_aws(arguments.host, arguments.aws_port) as aws_endpoint:
        stack = LocalStack.create(arguments.template, aws_endpoint)
        key = stack.register_api_key(os.environ.get("HOOKRELAY_DEV_API_KEY"))
        server = GatewayServer(arguments.host, arguments.port, stack.gateway())
        server.start()
        for worker in stack.workers:
            worker.start()
        print(f"AWS endpoint (moto): {aws_endpoint}")
        print(f"Development API key (team {DEV_TEAM}): {key}")
        print(f"hookrelay local stack ready on http://{arguments.host}:{server.port}", flush=True)
        stopping.wait()
        print("stopping", flush=True)
        for worker in reversed(stack.workers):
            worker.stop()
        server.stop()
    return 0


def _local_invoke(arguments: argparse.Namespace) -> int:
    from hookrelay_cli.local.stack import LocalStack, local_aws  # noqa: PLC0415 - moto loads only for local commands

    event = json.loads(Path(arguments.event).read_text(encoding="utf-8")) if arguments.event else {}
    with local_aws() as aws_endpoint:
        stack = LocalStack.create(arguments.template, aws_endpoint)
        # As with `sam local invoke`, the function's logs go to stderr and its result to stdout.
        with contextlib.redirect_stdout(sys.stderr):
            result = stack.invoke(arguments.function, event)
    print(json.dumps(result, indent=2))
    return 0


def _api_keys_table(arguments: argparse.Namespace) -> Any:
    import boto3  # noqa: PLC0415

    if arguments.local:
        from hookrelay_cli.local.resources import default_name  # noqa: PLC0415
        from hookrelay_cli.local.stack import LOCAL_CREDENTIALS, LOCAL_STACK_NAME  # noqa: PLC0415

        session = boto3.session.Session(
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        dynamodb = session.resource("dynamodb", endpoint_url=arguments.aws_endpoint)
        return dynamodb.Table(default_name(LOCAL_STACK_NAME, "ApiKeysTable"))
    session = boto3.session.Session(region_name=arguments.region)
    stack_resource = session.client("cloudformation").describe_stack_resource(
        StackName=arguments.stack, LogicalResourceId="ApiKeysTable"
    )
    return session.resource("dynamodb").Table(stack_resource["StackResourceDetail"]["PhysicalResourceId"])


def _keys_create(arguments: argparse.Namespace) -> int:
    from hookrelay.api_keys import issue_key  # noqa: PLC0415
    from hookrelay.store.api_keys import DynamoApiKeyStore  # noqa: PLC0415

    try:
        issued = issue_key(DynamoApiKeyStore(_api_keys_table(arguments)), arguments.team)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"api_key": issued.key, "key_id": issued.key_id, "team_id": issued.team_id}, indent=2))
    print("Store the key now: only its hash is kept, it cannot be shown again.", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookrelay", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="manage API keys", description="Manage API keys.")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser(
        "create",
        help="create an API key for a team",
        description="Create an API key for a team and print it (once: only its hash is stored).",
    )
    create.add_argument("--team", required=True, help="the team the key acts for")
    target = create.add_mutually_exclusive_group()
    target.add_argument("--stack", default=DEFAULT_STACK, help=f"deployed stack name (default {DEFAULT_STACK})")
    target.add_argument("--local", action="store_true", help="the running local stack instead of AWS")
    create.add_argument("--region", help="AWS region of the deployed stack (default: your AWS configuration)")
    create.add_argument(
        "--aws-endpoint",
        default=f"http://{DEFAULT_HOST}:{DEFAULT_AWS_PORT}",
        help="with --local: the local stack's AWS endpoint (default %(default)s)",
    )
    create.set_defaults(run=_keys_create)

    local = commands.add_parser("local", help="the Docker-free local stack", description="The Docker-free local stack.")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser(
        "up",
        help="start the local stack",
        description="Start moto, create the template's resources, and serve the HTTP API until Ctrl-C.",
    )
    up.add_argument("--host", default=DEFAULT_HOST, help="address to serve on (default %(default)s)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP API port, 0 for any (default %(default)s)")
    up.add_argument("--aws-port", type=int, default=DEFAULT_AWS_PORT, help="moto port, 0 for any (default %(default)s)")
    up.add_argument("--template", type=Path, default=_default_template(), help="the SAM template")
    up.set_defaults(run=_local_up)

    invoke = local_commands.add_parser(
        "invoke",
        help="invoke one function with an event, without Docker",
        description="Invoke a function of template.yaml in-process against a fresh local stack; print its result.",
    )
    invoke.add_argument("function", help="the function's logical id in template.yaml, e.g. ApiFunction")
    invoke.add_argument("-e", "--event", help="JSON file with the event (e.g. events/api-list-webhooks.json)")
    invoke.add_argument("--template", type=Path, default=_default_template(), help="the SAM template")
    invoke.set_defaults(run=_local_invoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return int(arguments.run(arguments))


if __name__ == "__main__":
    sys.exit(main())
