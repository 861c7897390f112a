"""template.yaml as data: its resources, functions, routes, and the intrinsic functions they use.

The local stack reads everything it creates from here, so template.yaml stays the one list of
resources.
"""

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
NO_AUTHORIZER = "NONE"
LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3


class TemplateError(ValueError):
    """template.yaml uses something the local stack cannot reproduce."""


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads the short forms (!Ref, !GetAtt, !Sub, ...) as their long JSON forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    environment: dict[str, Any]
    # How long an invocation may run before Lambda ends it.
    timeout_seconds: float = LAMBDA_DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    authorizer_function: str | None

    @property
    def pattern(self) -> re.Pattern[str]:
        # API Gateway path variables: {name} is one segment, {name+} the rest of the path.
        parts = re.split(r"(\{[^}]+\})", self.path)
        regex = "".join(
            "(.+)" if part.endswith("+}") else "([^/]+)" if part.startswith("{") else re.escape(part) for part in parts
        )
        return re.compile(f"^{regex}$")

    @property
    def is_greedy(self) -> bool:
        return "+}" in self.path

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source mapping: which queue feeds which function, and how."""

    function_id: str
    queue_id: str
    batch_size: int
    report_batch_item_failures: bool


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class ScheduleSource:
    """A function run on an EventBridge schedule (`rate(...)` expressions only)."""

    function_id: str
    interval_seconds: int


@dataclass(frozen=True)
class Template:
    path: Path
    document: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> "Template":
        return cls(path=path, document=load(path))

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.document["Resources"]
        return resources

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"template.yaml has no resource {logical_id}") from None

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: spec.get("Default") for name, spec in (self.document.get("Parameters") or {}).items()}

    def function(self, logical_id: str) -> FunctionSpec:
        resource = self.resource(logical_id)
        if resource.get("Type") != SERVERLESS_FUNCTION:
            raise TemplateError(f"{logical_id} is not an {SERVERLESS_FUNCTION}")
        properties = resource.get("Properties") or {}
        module, _, handler = str(properties["Handler"]).rpartition(".")
        global_properties = self.document.get("Globals", {}).get("Function", {})
        global_environment = global_properties.get("Environment", {})
        environment = {
            **(global_environment.get("Variables") or {}),
            **((properties.get("Environment") or {}).get("Variables") or {}),
        }
        return FunctionSpec(
            logical_id=logical_id,
            code_dir=self.root / str(properties["CodeUri"]),
            module=module,
            handler=handler,
            environment=environment,
            timeout_seconds=float(
                properties.get("Timeout", global_properties.get("Timeout", LAMBDA_DEFAULT_TIMEOUT_SECONDS))
            ),
        )

    def function_ids(self) -> list[str]:
        return [logical_id for logical_id, spec in self.resources.items() if spec.get("Type") == SERVERLESS_FUNCTION]

    def _function_events(self, event_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(function id, event properties) for every event source of a type (HttpApi, SQS, ...)."""
        for function_id in self.function_ids():
            events = (self.resource(function_id).get("Properties") or {}).get("Events") or {}
            for event in events.values():
                if event.get("Type") == event_type:
                    yield function_id, event.get("Properties") or {}

    def http_routes(self) -> list[tuple[RouteSpec, str]]:
        """Every HttpApi route with the function it invokes, most specific first (as API Gateway picks)."""
        routes: list[tuple[RouteSpec, str]] = []
        for function_id, properties in self._function_events("HttpApi"):
            api = self.resource(_ref_target(properties.get("ApiId")))
            method = str(properties.get("Method", "ANY")).upper()
            authorizer = self._authorizer_function(api, (properties.get("Auth") or {}).get("Authorizer"))
            routes.append((RouteSpec(method, str(properties["Path"]), authorizer), function_id))
        return sorted(routes, key=lambda entry: (entry[0].is_greedy, entry[0].method == "ANY", -len(entry[0].path)))

    def queue_sources(self) -> list[QueueSource]:
        sources = []
        for function_id, properties in self._function_events("SQS"):
            queue = properties.get("Queue")
            if not (isinstance(queue, dict) and "Fn::GetAtt" in queue):
                raise TemplateError(f"{function_id}: an SQS event's Queue must be !GetAtt <Queue>.Arn")
            sources.append(
                QueueSource(
                    function_id=function_id,
                    queue_id=str(queue["Fn::GetAtt"][0]),
                    batch_size=int(properties.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (properties.get("FunctionResponseTypes") or []),
                )
            )
        return sources

    def schedules(self) -> list[ScheduleSource]:
        schedules = []
        for function_id, properties in self._function_events("Schedule"):
            match = _RATE.match(str(properties.get("Schedule", "")))
            if not match:
                raise TemplateError(f"{function_id}: the local stack runs rate(...) schedules only")
            seconds = int(match.group(1)) * _RATE_SECONDS[match.group(2).rstrip("s")]
            schedules.append(ScheduleSource(function_id=function_id, interval_seconds=seconds))
        return schedules

    def _authorizer_function(self, api: dict[str, Any], name: str | None) -> str | None:
        auth = (api.get("Properties") or {}).get("Auth") or {}
        name = name or auth.get("DefaultAuthorizer")
        if not name or name == NO_AUTHORIZER:
            return None
        authorizer = (auth.get("Authorizers") or {}).get(name)
        if not authorizer:
            raise TemplateError(f"HttpApi authorizer {name} is not declared")
        function_arn = authorizer.get("FunctionArn")
        if not (isinstance(function_arn, dict) and "Fn::GetAtt" in function_arn):
            raise TemplateError(f"authorizer {name}: FunctionArn must be !GetAtt <Function>.Arn")
        return str(function_arn["Fn::GetAtt"][0])


def _ref_target(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise TemplateError(f"expected !Ref <resource>, got {value!r}")


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Intrinsics:
    """Resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join against one set of physical resources."""

    ref: Callable[[str], str]
    get_att: Callable[[str, str], str]
    pseudo: Mapping[str, str]
    parameters: Mapping[str, Any]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self._ref(str(argument))
            if name == "Fn::GetAtt":
                logical_id, attribute = argument
                return self.get_att(str(logical_id), str(attribute))
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(item) for item in self.resolve(items))
            if name.startswith("Fn::"):
                raise TemplateError(f"{name} is not supported by the local stack")
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return str(self.parameters[name])
        return self.ref(name)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved = {name: str(self.resolve(item)) for name, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in resolved:
                return resolved[name]
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self._ref(name)

        return _SUB_VARIABLE.sub(substitute, text)
