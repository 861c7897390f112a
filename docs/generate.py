"""Writes the docs' generated files from their sources, so that they cannot drift from the code:

- docs/architecture.svg, from the boxes and arrows listed below;
- docs/configuration.md, from template.yaml (Globals and Parameters), hookrelay/settings.py (each
  setting's default) and docs/configuration.yaml (what each setting means);
- docs/api/openapi.json, the document the API serves at /v3/openapi.json, and docs/api/reference.md,
  its operations as a page.

    .venv/bin/python docs/generate.py           # write them
    .venv/bin/python docs/generate.py --check   # exit 1, naming them, when one differs from what it would write

tests/unit/test_docs.py and tests/integration/test_openapi_docs.py fail when a checked-in file is not what this writes.
"""

import argparse
import ast
import html
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
sys.path[:0] = [str(REPO / "layers" / "common" / "python"), str(REPO / "cli")]

from hookrelay_cli.template import load  # noqa: E402 - after the path is set

TEMPLATE = REPO / "template.yaml"
SETTINGS = REPO / "layers" / "common" / "python" / "hookrelay" / "settings.py"
MEANINGS = DOCS / "configuration.yaml"
REQUIRED = "required"


# The architecture picture: boxes on a grid (column, row) and the arrows between them.
@dataclass(frozen=True)
class Box:
    name: str
    label: str  # lines separated by \n
    column: int
    row: int
    kind: str  # a key of BOX_COLOURS


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    label: str = ""


BOX_COLOURS = {  # fill, stroke
    "outside": ("#eeeeee", "#616161"),
    "function": ("#fff3e0", "#e8710a"),
    "queue": ("#fce4ec", "#c2185b"),
    "table": ("#e3f2fd", "#1565c0"),
    "bus": ("#f3e5f5", "#7b1fa2"),
}
BOXES = (
    Box("platform", "Tenant's platform\n(API key)", 0, 0, "outside"),
    Box("portal", "Webhook portal\n(customer's browser)", 0, 1, "outside"),
    Box("gateway", "HTTP API\n(API Gateway)", 1, 0, "function"),
    Box("authorizer", "AuthorizerFunction\nkey → team", 1, 1, "function"),
    Box("api", "ApiFunction\nsubscriptions, events,\ndelivery log", 2, 0, "function"),
    Box("subscriptions", "DynamoDB\nsubscriptions, API keys", 2, 1, "table"),
    Box("bus", "EventBridge bus", 3, 0, "bus"),
    Box("bus_dlq", "EventBridge DLQ", 3, 1, "queue"),
    Box("events_queue", "events queue\n(fair: team)", 4, 0, "queue"),
    Box("events_dlq", "events DLQ", 4, 1, "queue"),
    Box("ingest", "IngestFunction\nmatch + fan-out", 5, 0, "function"),
    Box("delivery_queue", "delivery queue\n(fair: team)", 5, 1, "queue"),
    Box("delivery_dlq", "delivery DLQ", 6, 1, "queue"),
    Box("delivery", "DeliveryFunction\nrender, sign, send", 5, 2, "function"),
    Box("receiver", "Receiver\n(tenant's endpoint)", 4, 2, "outside"),
    Box("sweeper", "SweeperFunction\nevery minute", 6, 3, "function"),
    Box("deliveries", "DynamoDB\ndeliveries, events", 5, 3, "table"),
)
ARROWS = (
    Arrow("platform", "gateway", "HTTPS /v3"),
    Arrow("portal", "gateway"),
    Arrow("gateway", "authorizer"),
    Arrow("gateway", "api"),
    Arrow("api", "subscriptions", "CRUD"),
    Arrow("api", "bus", "PutEvents"),
    Arrow("bus", "events_queue", "rule"),
    Arrow("bus", "bus_dlq"),
    Arrow("events_queue", "ingest"),
    Arrow("events_queue", "events_dlq", "5 receives"),
    Arrow("ingest", "delivery_queue", "SendMessageBatch"),
    Arrow("delivery_queue", "delivery_dlq", "5 receives"),
    Arrow("delivery_queue", "delivery", "attempts, retries ≤ 15 min"),
    Arrow("delivery", "receiver", "signed POST"),
    Arrow("delivery", "deliveries", "attempt log"),
    Arrow("sweeper", "deliveries", "due retries"),
    Arrow("sweeper", "delivery_queue", "re-enqueue"),
)
COLUMN_WIDTH, ROW_HEIGHT, BOX_WIDTH, BOX_HEIGHT, MARGIN, LINE_HEIGHT = 215, 110, 150, 64, 10, 15


def _centre(box: Box) -> tuple[float, float]:
    return MARGIN + box.column * COLUMN_WIDTH + COLUMN_WIDTH / 2, MARGIN + box.row * ROW_HEIGHT + ROW_HEIGHT / 2


def _edge_point(centre: tuple[float, float], dx: float, dy: float) -> tuple[float, float]:
    """Where the line from a box's centre in direction (dx, dy) leaves the box."""
    scale = min(BOX_WIDTH / 2 / abs(dx) if dx else math.inf, BOX_HEIGHT / 2 / abs(dy) if dy else math.inf)
    return centre[0] + dx * scale, centre[1] + dy * scale


def _text(x: float, y: float, lines: list[str], size: int, *, halo: bool = False) -> str:
    top = y - (len(lines) - 1) * LINE_HEIGHT / 2
    style = ' stroke="#ffffff" stroke-width="4" paint-order="stroke"' if halo else ""
    spans = "".join(
        f'<tspan x="{x:.0f}" y="{top + index * LINE_HEIGHT:.0f}">{html.escape(line)}</tspan>'
        for index, line in enumerate(lines)
    )
    return f'<text font-size="{size}" text-anchor="middle" dominant-baseline="middle"{style}>{spans}</text>'


def architecture_svg() -> str:
    boxes = {box.name: box for box in BOXES}
    width = 2 * MARGIN + COLUMN_WIDTH * (1 + max(box.column for box in BOXES))
    height = 2 * MARGIN + ROW_HEIGHT * (1 + max(box.row for box in BOXES))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' font-family="Helvetica, Arial, sans-serif" role="img" aria-label="hookrelay architecture">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        ' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#424242"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    labels = []
    for arrow in ARROWS:
        (x1, y1), (x2, y2) = _centre(boxes[arrow.source]), _centre(boxes[arrow.target])
        length = math.hypot(x2 - x1, y2 - y1)
        dx, dy = (x2 - x1) / length, (y2 - y1) / length
        (sx, sy), (ex, ey) = _edge_point((x1, y1), dx, dy), _edge_point((x2, y2), -dx, -dy)
        parts.append(
            f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{ex:.0f}" y2="{ey:.0f}" stroke="#424242"'
            ' stroke-width="1.5" marker-end="url(#arrow)"/>'
        )
        if arrow.label:
            labels.append(_text((sx + ex) / 2, (sy + ey) / 2 - (10 if dy == 0 else 0), [arrow.label], 11, halo=True))
    for box in BOXES:
        x, y = _centre(box)
        fill, stroke = BOX_COLOURS[box.kind]
        parts.append(
            f'<rect x="{x - BOX_WIDTH / 2:.0f}" y="{y - BOX_HEIGHT / 2:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}"'
            f' rx="8" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
        )
        parts.append(_text(x, y, box.label.split("\n"), 12))
    return "\n".join([*parts, *labels, "</svg>"]) + "\n"


# Configuration: template.yaml's Globals and Parameters, settings.py's defaults, configuration.yaml's meanings.
def _setting_defaults() -> dict[str, str]:
    """Each variable hookrelay.settings reads, with the default it takes when the variable is unset."""
    from hookrelay import settings  # noqa: PLC0415 - after the path is set

    defaults = {}
    for node in ast.walk(ast.parse(SETTINGS.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "read"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            default = node.args[1] if len(node.args) > 1 else None
            if default is None:
                defaults[node.args[0].value] = REQUIRED
            elif isinstance(default, ast.Constant):
                defaults[node.args[0].value] = _shown(default.value)
            else:
                defaults[node.args[0].value] = _shown(getattr(settings, ast.unparse(default)))
    return defaults


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _deployed(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"!Ref {value['Ref']}"
    return str(value)


def _prose(text: str) -> str:
    """Text of the API's descriptions as Markdown: `<`, outside code spans, is not the start of an HTML tag."""
    pieces = text.split("`")
    return "`".join(piece if index % 2 else piece.replace("<", "&lt;") for index, piece in enumerate(pieces))


def _cell(text: str) -> str:
    return _prose(text).replace("|", "\\|").replace("\n", " ")


def configuration_md() -> str:
    template = load(TEMPLATE)
    variables: dict[str, Any] = template["Globals"]["Function"]["Environment"]["Variables"]
    defaults = _setting_defaults()
    meanings: dict[str, str] = yaml.safe_load(MEANINGS.read_text(encoding="utf-8"))
    problems = [f"{name}: read by hookrelay.settings, not declared in template.yaml Globals" for name in defaults]
    problems = [problem for problem in problems if problem.split(":")[0] not in variables]
    problems += [f"{name}: no meaning in {MEANINGS.name}" for name in variables if name not in meanings]
    problems += [
        f"{name}: in {MEANINGS.name}, not in template.yaml Globals" for name in meanings if name not in variables
    ]
    if problems:
        raise SystemExit("docs/generate.py: " + "; ".join(problems))
    lines = [
        "# Configuration",
        "",
        "<!-- Written by docs/generate.py from template.yaml, hookrelay/settings.py and docs/configuration.yaml:"
        " edit those, then run `.venv/bin/python docs/generate.py`. -->",
        "",
        "## Settings",
        "",
        "Every function reads the same settings, declared once in `template.yaml` `Globals` and parsed once",
        "by `hookrelay.settings` (a wrong value fails at start-up, naming the variable). *Deployed* is the value",
        "`template.yaml` gives; *unset* is what `hookrelay.settings` takes when the variable is not set at all,",
        "as in the [local stack](local-stack.md), which also sets any of them from its environment.",
        "",
        "| variable | deployed | unset | meaning |",
        "|---|---|---|---|",
    ]
    for name, value in variables.items():
        unset = f"`{_cell(defaults[name])}`" if name in defaults else "powertools' own default"
        if defaults.get(name) == REQUIRED:
            unset = "required (a function fails to start without it)"
        lines.append(f"| `{name}` | `{_cell(_deployed(value))}` | {unset} | {_cell(meanings[name])} |")
    lines += [
        "",
        "## Template parameters",
        "",
        "`sam deploy --parameter-overrides Name=value ...` sets them (`sam deploy --guided` asks for each); the",
        "local stack takes them from `HOOKRELAY_LOCAL_PARAMETER_OVERRIDES`.",
        "",
        "| parameter | default | allowed | meaning |",
        "|---|---|---|---|",
    ]
    for name, parameter in template["Parameters"].items():
        allowed = _allowed(parameter)
        default = _cell(str(parameter.get("Default", "")))
        lines.append(
            f"| `{name}` | {f'`{default}`' if default else '(empty)'} | {allowed} | {_cell(parameter['Description'])} |"
        )
    return "\n".join(lines) + "\n"


def _allowed(parameter: dict[str, Any]) -> str:
    if "AllowedValues" in parameter:
        return ", ".join(f"`{value}`" for value in parameter["AllowedValues"])
    bounds = [f"≥ {parameter['MinValue']}"] if "MinValue" in parameter else []
    bounds += [f"≤ {parameter['MaxValue']}"] if "MaxValue" in parameter else []
    if "AllowedPattern" in parameter:
        bounds.append(f"`{_cell(parameter['AllowedPattern'])}`")
    return ", ".join(bounds)


# The OpenAPI document, as the API serves it, and a page of its operations.
def openapi_document() -> dict[str, Any]:
    """GET /v3/openapi.json of the API function, served through the local stack's gateway over moto."""
    from moto import mock_aws  # noqa: PLC0415 - only this file needs moto

    from hookrelay_cli.local.gateway import HttpRequest  # noqa: PLC0415
    from hookrelay_cli.local.stack import LocalStack  # noqa: PLC0415

    for name, value in {
        "AWS_ACCESS_KEY_ID": "docs",
        "AWS_SECRET_ACCESS_KEY": "docs",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    with mock_aws():
        stack = LocalStack.create(TEMPLATE, aws_endpoint="moto")
        response = stack.gateway().handle(HttpRequest("GET", "/v3/openapi.json", [], b"", "127.0.0.1"))
    if response.status != 200:
        raise SystemExit(f"docs/generate.py: GET /v3/openapi.json answered {response.status}")
    document: dict[str, Any] = json.loads(response.body)
    return document


def openapi_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _schema_name(content: dict[str, Any]) -> str:
    for media in content.values():
        schema = media.get("schema", {})
        reference = schema.get("$ref") or schema.get("items", {}).get("$ref")
        if reference:
            return f"`{reference.rsplit('/', 1)[-1]}`"
    return ""


def reference_md(document: dict[str, Any]) -> str:
    lines = [
        "# OpenAPI reference",
        "",
        "<!-- Written by docs/generate.py from the document GET /v3/openapi.json serves. -->",
        "",
        f"The API's OpenAPI {document['openapi']} document, as every stack serves it at `/v3/openapi.json`",
        "(without a key; Swagger UI at `/v3/docs`), is [openapi.json](openapi.json): load it into any OpenAPI",
        "tool. Its operations:",
        "",
    ]
    for path, operations in sorted(document["paths"].items()):
        for method, operation in operations.items():
            lines += [f"## {method.upper()} {path}", "", f"**{operation.get('summary', '')}**", ""]
            if operation.get("description"):
                lines += [_prose(operation["description"]), ""]
            parameters = operation.get("parameters", [])
            if parameters:
                lines += ["| parameter | in | required | description |", "|---|---|---|---|"]
                lines += [
                    f"| `{each['name']}` | {each['in']} | {'yes' if each.get('required') else 'no'} |"
                    f" {_cell(each.get('description', ''))} |"
                    for each in parameters
                ]
                lines.append("")
            body = operation.get("requestBody")
            if body:
                lines += [f"Body: {_schema_name(body.get('content', {})) or 'JSON'}.", ""]
            lines += ["| answer | description | body |", "|---|---|---|"]
            lines += [
                f"| {status} | {_cell(answer.get('description', ''))} | {_schema_name(answer.get('content', {}))} |"
                for status, answer in sorted(operation.get("responses", {}).items())
            ]
            lines.append("")
    return "\n".join(lines)


def generated_files(*, with_openapi: bool = True) -> Iterator[tuple[Path, Callable[[], str]]]:
    yield DOCS / "architecture.svg", architecture_svg
    yield DOCS / "configuration.md", configuration_md
    if with_openapi:
        document = openapi_document()
        yield DOCS / "api" / "openapi.json", lambda: openapi_json(document)
        yield DOCS / "api" / "reference.md", lambda: reference_md(document)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    arguments = parser.parse_args()
    stale = []
    for path, render in generated_files():
        text = render()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(str(path.relative_to(REPO)))
        if not arguments.check:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(("out of date: " if arguments.check else "wrote ") + ", ".join(stale))
    return 1 if stale and arguments.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
