"""template.yaml as CloudFormation deploys it: the SAM transform's output, and the intrinsics it uses.

The local stack reads everything it creates from the translated template (Lambda functions, their
IAM roles, event source mappings, schedule rules, the HTTP API's OpenAPI body), so template.yaml
stays the one list of resources and the local stack sees what a deployment would.
"""

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

LAMBDA_FUNCTION = "AWS::Lambda::Function"
NO_AUTHORIZER = "NONE"
# The SAM transform needs an S3 location for code; local code stays where CodeUri points, which the
# translated function keeps as this placeholder bucket's key.
LOCAL_CODE_BUCKET = "hookrelay-local-code"
_LOCAL_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class TemplateError(ValueError):
    """template.yaml uses something the local stack cannot reproduce."""


def load(path: Path) -> dict[str, Any]:
    """The template as plain JSON data, short forms (!Ref, !If, ...) in their long forms."""
    # cfn-lint takes half a second to import: a function container, which only needs FunctionSpec, never does.
    from cfnlint.decode import cfn_yaml  # noqa: PLC0415

    try:
        decoded = cfn_yaml.load(str(path))
    except yaml.YAMLError as error:
        raise TemplateError(f"{path} is not valid YAML: {error}") from None
    document: Any = json.loads(json.dumps(decoded))
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


def translate(document: dict[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The SAM transform, offline: no managed policy is looked up (SAM's defaults are plain ARNs)."""
    # samtranslator takes most of a second to import: only a template that is translated pays it.
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics  # noqa: PLC0415
    from samtranslator.model.exceptions import InvalidDocumentException  # noqa: PLC0415
    from samtranslator.parser.parser import Parser  # noqa: PLC0415
    from samtranslator.translator.translator import Translator  # noqa: PLC0415

    source = copy.deepcopy(document)
    for resource in source["Resources"].values():
        code_property = _LOCAL_CODE_PROPERTIES.get(resource.get("Type"))
        properties = resource.get("Properties") or {}
        if code_property and isinstance(properties.get(code_property), str):
            properties[code_property] = f"s3://{LOCAL_CODE_BUCKET}/{properties[code_property]}"
    # The region only picks the partition of the few ARNs SAM writes out; the rest keep ${AWS::Region}.
    # The transform times itself into metrics it keeps until published; left so, they are "unpublished
    # metrics" that it warns of on stderr when they are collected (at the latest when the process exits).
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name="us-east-1"),
        metrics=metrics,
    )
    try:
        translated: dict[str, Any] = translator.translate(sam_template=source, parameter_values=dict(parameters))
    except InvalidDocumentException as error:
        causes = "; ".join(cause.message for cause in error.causes)
        raise TemplateError(f"the SAM transform refuses the template: {causes}") from None
    finally:
        metrics.publish()
    return translated


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    environment: dict[str, Any]
    timeout_seconds: int
    role_id: str


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
    # Its ScalingConfig's MaximumConcurrency, unresolved; None when unset.
    maximum_concurrency: Any = None
    # How long Lambda gathers records for a batch that is not full (MaximumBatchingWindowInSeconds).
    batching_window_seconds: int = 0


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# OpenAPI's name for ANY in API Gateway's extensions.
_ANY_METHOD = "x-amazon-apigateway-any-method"
_INTEGRATION = "x-amazon-apigateway-integration"
_AUTHORIZER = "x-amazon-apigateway-authorizer"
_INVOKED_FUNCTION = re.compile(r"/functions/([A-Za-z0-9]+)/invocations$")


@dataclass(frozen=True)
class ScheduleSource:
    """A function run on an EventBridge schedule (`rate(...)` expressions only)."""

    function_id: str
    interval_seconds: int


@dataclass(frozen=True)
class Template:
    path: Path
    # template.yaml as written (SAM: Globals, AWS::Serverless::*), and as CloudFormation deploys it.
    document: dict[str, Any]
    translated: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> "Template":
        document = load(path)
        return cls(path=path, document=document, translated=translate(document, {}))

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.translated["Resources"]
        return resources

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"template.yaml has no resource {logical_id}") from None

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(logical id, properties) of every translated resource of a type."""
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == resource_type:
                yield logical_id, resource.get("Properties") or {}

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: spec.get("Default") for name, spec in (self.document.get("Parameters") or {}).items()}

    @property
    def conditions(self) -> dict[str, Any]:
        conditions: dict[str, Any] = self.translated.get("Conditions") or {}
        return conditions

    def function(self, logical_id: str) -> FunctionSpec:
        resource = self.resource(logical_id)
        if resource.get("Type") != LAMBDA_FUNCTION:
            raise TemplateError(f"{logical_id} is not an {LAMBDA_FUNCTION}")
        properties = resource.get("Properties") or {}
        code = properties.get("Code") or {}
        if code.get("S3Bucket") != LOCAL_CODE_BUCKET:
            raise TemplateError(f"{logical_id}: the local stack runs code from a local CodeUri only")
        module, _, handler = str(properties["Handler"]).rpartition(".")
        return FunctionSpec(
            logical_id=logical_id,
            code_dir=self.root / str(code["S3Key"]),
            module=module,
            handler=handler,
            environment=dict((properties.get("Environment") or {}).get("Variables") or {}),
            timeout_seconds=int(properties.get("Timeout", 3)),
            role_id=_get_att_target(properties.get("Role"), "Arn", f"{logical_id}.Role"),
        )

    def function_ids(self) -> list[str]:
        return [logical_id for logical_id, _ in self.of_type(LAMBDA_FUNCTION)]

    def http_routes(self) -> list[tuple[RouteSpec, str]]:
        """Every HttpApi route with the function it invokes, most specific first (as API Gateway picks)."""
        routes: list[tuple[RouteSpec, str]] = []
        for api_id, properties in self.of_type("AWS::ApiGatewayV2::Api"):
            body = properties.get("Body") or {}
            schemes = (body.get("components") or {}).get("securitySchemes") or {}
            for path, operations in (body.get("paths") or {}).items():
                for method, operation in operations.items():
                    where = f"{api_id} {method} {path}"
                    function_id = _invoked_function(operation[_INTEGRATION]["uri"], where)
                    authorizer = self._authorizer_function(schemes, operation.get("security") or [], where)
                    route = RouteSpec("ANY" if method == _ANY_METHOD else method.upper(), path, authorizer)
                    routes.append((route, function_id))
        return sorted(routes, key=lambda entry: (entry[0].is_greedy, entry[0].method == "ANY", -len(entry[0].path)))

    def queue_sources(self) -> list[QueueSource]:
        return [
            QueueSource(
                function_id=_ref_target(properties.get("FunctionName"), f"{mapping_id}.FunctionName"),
                queue_id=_get_att_target(properties.get("EventSourceArn"), "Arn", f"{mapping_id}.EventSourceArn"),
                batch_size=int(properties.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
                maximum_concurrency=(properties.get("ScalingConfig") or {}).get("MaximumConcurrency"),
                batching_window_seconds=int(properties.get("MaximumBatchingWindowInSeconds", 0)),
            )
            for mapping_id, properties in self.of_type("AWS::Lambda::EventSourceMapping")
        ]

    def schedules(self) -> list[ScheduleSource]:
        schedules = []
        for rule_id, properties in self.of_type("AWS::Events::Rule"):
            if "ScheduleExpression" not in properties:
                continue
            match = _RATE.match(str(properties["ScheduleExpression"]))
            if not match:
                raise TemplateError(f"{rule_id}: the local stack runs rate(...) schedules only")
            seconds = int(match.group(1)) * _RATE_SECONDS[match.group(2).rstrip("s")]
            for target in properties.get("Targets") or []:
                function_id = _get_att_target(target.get("Arn"), "Arn", f"{rule_id}.Targets")
                schedules.append(ScheduleSource(function_id=function_id, interval_seconds=seconds))
        return schedules

    def stage_throttling(self) -> tuple[Any, Any] | None:
        """(rate, burst) of the HTTP API stage's default route settings, unresolved; None when unset."""
        for _, properties in self.of_type("AWS::ApiGatewayV2::Stage"):
            settings = properties.get("DefaultRouteSettings") or {}
            if "ThrottlingRateLimit" in settings:
                return settings["ThrottlingRateLimit"], settings.get("ThrottlingBurstLimit")
        return None

    def reserved_concurrency(self, function_id: str) -> Any:
        """A function's ReservedConcurrentExecutions, unresolved; None when it has none."""
        return (self.resource(function_id).get("Properties") or {}).get("ReservedConcurrentExecutions")

    def _authorizer_function(self, schemes: dict[str, Any], security: list[dict[str, Any]], where: str) -> str | None:
        names = [name for requirement in security for name in requirement]
        if not names or names == [NO_AUTHORIZER]:
            return None
        (name,) = names
        authorizer = (schemes.get(name) or {}).get(_AUTHORIZER)
        if not authorizer:
            raise TemplateError(f"{where}: HttpApi authorizer {name} is not declared")
        return _invoked_function(authorizer["authorizerUri"], f"{where} authorizer {name}")


def _ref_target(value: Any, where: str) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise TemplateError(f"{where}: expected !Ref <resource>, got {value!r}")


def _get_att_target(value: Any, attribute: str, where: str) -> str:
    if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list) and value["Fn::GetAtt"][1] == attribute:
        return str(value["Fn::GetAtt"][0])
    raise TemplateError(f"{where}: expected !GetAtt <resource>.{attribute}, got {value!r}")


def _invoked_function(uri: Any, where: str) -> str:
    """The logical id of the function an API Gateway integration or authorizer URI invokes."""
    resolved = Intrinsics(
        ref=lambda logical_id: logical_id,
        get_att=lambda logical_id, attribute: logical_id,
        pseudo={"AWS::Partition": "aws", "AWS::Region": "local", "AWS::AccountId": "local"},
        parameters={},
    ).resolve(uri, where)
    match = _INVOKED_FUNCTION.search(str(resolved))
    if not match:
        raise TemplateError(f"{where}: {uri!r} does not invoke a function of the template")
    return match.group(1)


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
# Ref AWS::NoValue: the property or list item it stands for is left out.
_NO_VALUE = object()


@dataclass
class Intrinsics:
    """Resolves the intrinsic functions of a translated template against one set of physical resources.

    Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If (with the template's
    conditions: Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) and AWS::NoValue. Anything else fails
    with the function's name and where the template uses it.
    """

    ref: Callable[[str], str]
    get_att: Callable[[str, str], str]
    pseudo: Mapping[str, str]
    parameters: Mapping[str, Any]
    conditions: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any, where: str = "template") -> Any:
        resolved = self._resolve(value, where)
        return None if resolved is _NO_VALUE else resolved

    def condition(self, name: str, where: str = "template") -> bool:
        if name not in self.conditions:
            raise TemplateError(f"{where}: condition {name} is not declared")
        return self._condition(self.conditions[name], f"Conditions.{name}")

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item, f"{where}[{index}]") for index, item in enumerate(value)]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref" or name.startswith("Fn::"):
                return self._function(name, argument, f"{where}.{name}")
        resolved = {key: self._resolve(item, f"{where}.{key}") for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _function(self, name: str, argument: Any, where: str) -> Any:
        if name == "Ref":
            return _NO_VALUE if argument == "AWS::NoValue" else self._ref(str(argument), where)
        if name == "Fn::GetAtt":
            logical_id, attribute = argument
            return self.get_att(str(logical_id), str(attribute))
        if name == "Fn::Sub":
            return self._sub(argument, where)
        if name == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self._resolve(items, where))
        if name == "Fn::Select":
            index, items = argument
            return self._resolve(items, where)[int(self._resolve(index, where))]
        if name == "Fn::Split":
            separator, text = argument
            return str(self._resolve(text, where)).split(str(separator))
        if name == "Fn::If":
            condition, if_true, if_false = argument
            return self._resolve(if_true if self.condition(str(condition), where) else if_false, where)
        raise TemplateError(f"{where}: {name} is not supported by the local stack")

    def _condition(self, expression: Any, where: str) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise TemplateError(f"{where}: {expression!r} is not a condition")
        ((name, argument),) = expression.items()
        where = f"{where}.{name}"
        if name == "Condition":
            return self.condition(str(argument), where)
        if name == "Fn::Equals":
            left, right = (self.resolve(item, where) for item in argument)
            return bool(str(left) == str(right))
        if name == "Fn::Not":
            (operand,) = argument
            return not self._condition(operand, where)
        if name == "Fn::And":
            return all(self._condition(operand, where) for operand in argument)
        if name == "Fn::Or":
            return any(self._condition(operand, where) for operand in argument)
        raise TemplateError(f"{where}: {name} is not supported in a condition by the local stack")

    def _ref(self, name: str, where: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return str(self.parameters[name])
        if name.startswith("AWS::"):
            raise TemplateError(f"{where}: pseudo parameter {name} is not supported by the local stack")
        return self.ref(name)

    def _sub(self, argument: Any, where: str) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved = {name: str(self.resolve(item, f"{where}.{name}")) for name, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in resolved:
                return resolved[name]
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self._ref(name, where)

        return _SUB_VARIABLE.sub(substitute, text)
