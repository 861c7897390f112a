import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hookrelay.delivery import SEND_CONCURRENCY
from hookrelay.settings import AwsCallLimits, Settings
from hookrelay.sweeper import stop_seconds
from hookrelay.team_limits import limits
from hookrelay.time_budget import attempt_seconds
from hookrelay_cli.dlq import DEAD_LETTER_QUEUES
from hookrelay_cli.main import DLQ_NAMES
from hookrelay_cli.template import Intrinsics, Template, TemplateError
from paths import TEMPLATE


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.read(TEMPLATE)


def intrinsics(**parameters: Any) -> Intrinsics:
    return Intrinsics(
        ref=lambda logical_id: f"physical-{logical_id}",
        get_att=lambda logical_id, attribute: f"{logical_id}.{attribute}",
        pseudo={"AWS::StackName": "st", "AWS::Region": "eu-west-3"},
        parameters={"Level": "INFO", "Topic": "", **parameters},
        conditions={
            "HasTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Topic"}, ""]}]},
            "Verbose": {"Fn::Or": [{"Fn::Equals": [{"Ref": "Level"}, "DEBUG"]}, {"Condition": "HasTopic"}]},
            "Both": {"Fn::And": [{"Condition": "HasTopic"}, {"Condition": "Verbose"}]},
        },
    )


def test_intrinsics() -> None:
    resolve = intrinsics().resolve
    assert resolve({"Ref": "Queue"}) == "physical-Queue"
    assert resolve({"Ref": "Level"}) == "INFO"
    assert resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "Queue.Arn"
    assert resolve({"Fn::Sub": "${AWS::StackName}-${Queue}-${Queue.Arn}"}) == "st-physical-Queue-Queue.Arn"
    assert resolve({"Fn::Sub": ["${A}/x", {"A": {"Ref": "AWS::Region"}}]}) == "eu-west-3/x"
    assert resolve({"Fn::Join": ["-", ["a", {"Ref": "Queue"}]]}) == "a-physical-Queue"
    assert resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert resolve({"Nested": [{"Ref": "Queue"}]}) == {"Nested": ["physical-Queue"]}


def test_conditions_and_if() -> None:
    actions = {"Fn::If": ["HasTopic", [{"Ref": "Topic"}], {"Ref": "AWS::NoValue"}]}
    # AWS::NoValue leaves the property out, as CloudFormation does.
    assert intrinsics().resolve({"AlarmActions": actions, "Threshold": 1}) == {"Threshold": 1}
    assert intrinsics(Topic="arn:topic").resolve({"AlarmActions": actions}) == {"AlarmActions": ["arn:topic"]}
    assert [intrinsics(Level=level).condition("Verbose") for level in ("DEBUG", "INFO")] == [True, False]
    assert intrinsics(Topic="arn:topic", Level="INFO").condition("Both")


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (
            {"Fn::ImportValue": "shared-vpc"},
            "Resources.X.Properties.Vpc.Fn::ImportValue: Fn::ImportValue is not supported",
        ),
        ({"Fn::If": ["Unknown", 1, 2]}, "Resources.X.Properties.Vpc.Fn::If: condition Unknown is not declared"),
        ({"Ref": "AWS::NotificationARNs"}, "pseudo parameter AWS::NotificationARNs is not supported"),
    ],
)
def test_an_unsupported_intrinsic_is_named_with_where_it_is(value: Any, named: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(named)):
        intrinsics().resolve({"Vpc": value}, "Resources.X.Properties")


def test_every_intrinsic_of_the_translated_template_resolves(template: Template) -> None:
    resolver = Intrinsics(
        ref=lambda logical_id: f"physical-{logical_id}",
        get_att=lambda logical_id, attribute: f"{logical_id}.{attribute}",
        pseudo={
            "AWS::StackName": "st",
            "AWS::Region": "eu-west-3",
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
        parameters=template.parameter_defaults(),
        conditions=template.conditions,
    )
    for section in ("Resources", "Outputs"):
        resolved = json.dumps(resolver.resolve(template.translated[section], section))
        assert '"Ref"' not in resolved
        assert '"Fn::' not in resolved
        assert "${" not in resolved.replace("$${", "")


def test_the_deployed_shape_comes_from_the_sam_transform(template: Template) -> None:
    # Roles, event source mappings and schedules are the transform's, not a reading of the SAM events.
    assert template.function("DeliveryFunction").role_id == "DeliveryFunctionRole"
    assert template.resource("DeliveryFunctionRole")["Type"] == "AWS::IAM::Role"
    assert template.function("IngestFunction").timeout_seconds == 30
    assert {(source.function_id, source.queue_id, source.batch_size) for source in template.queue_sources()} == {
        ("IngestFunction", "EventsQueue", 10),
        ("DeliveryFunction", "DeliveryQueue", 10),
        ("DeliveryFunction", "SlowLaneQueue", 10),
    }
    assert [(schedule.function_id, schedule.interval_seconds) for schedule in template.schedules()] == [
        ("SweeperFunction", 60)
    ]


def test_no_queue_gathers_its_batches_for_a_window(template: Template) -> None:
    # With a batching window, AWS documents that Lambda may wait up to 20 s on a queue with very low
    # traffic: most teams publish a few events an hour, and each queue on the way would add it.
    assert {source.queue_id: source.batching_window_seconds for source in template.queue_sources()} == {
        "EventsQueue": 0,
        "DeliveryQueue": 0,
        "SlowLaneQueue": 0,
    }


def test_a_batching_window_is_read_from_the_template(tmp_path: Path) -> None:
    windowed = tmp_path / "template.yaml"
    windowed.write_text(
        TEMPLATE.read_text().replace(
            "            Queue: !GetAtt EventsQueue.Arn\n",
            "            Queue: !GetAtt EventsQueue.Arn\n            MaximumBatchingWindowInSeconds: 2\n",
            1,
        )
    )
    windows = {source.queue_id: source.batching_window_seconds for source in Template.read(windowed).queue_sources()}
    assert windows["EventsQueue"] == 2 and windows["DeliveryQueue"] == 0


def test_a_template_the_sam_transform_refuses_fails_with_its_reason(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("            Queue: !GetAtt EventsQueue.Arn\n", "", 1))
    with pytest.raises(TemplateError, match=r"SAM transform refuses the template.*Queue"):
        Template.read(broken)


def test_every_setting_is_declared_in_globals_and_nothing_else(template: Template) -> None:
    # One settings module reads exactly the variables template.yaml declares for every function.
    # The template's values, parameters at their defaults, resource names made up.
    parameters = template.parameter_defaults()
    declared = {
        name: str(parameters[value["Ref"]])
        if isinstance(value, dict) and value.get("Ref") in parameters
        else "physical-name"
        if isinstance(value, dict)
        else str(value)
        for name, value in template.function("ApiFunction").environment.items()
        if name.startswith("HOOKRELAY_")
    }
    environment = ReadRecorder(declared)
    Settings.from_environment(environment)
    assert set(declared) == environment.read


class ReadRecorder(dict[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self, values: dict[str, str]):
        super().__init__(values)
        self.read: set[str] = set()

    def __contains__(self, name: object) -> bool:
        self.read.add(str(name))
        return super().__contains__(name)

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return super().__getitem__(name)

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.read.add(name)
        return super().get(name, default)


def test_no_function_puts_its_answers_or_errors_in_traces(template: Template) -> None:
    # powertools' Tracer would put a handler's answer (the secret_key of a create or rotate, the
    # Swagger page) and its exceptions (pydantic's carry the input) into X-Ray; off in Globals, for all.
    global_environment = template.document["Globals"]["Function"]["Environment"]["Variables"]
    switches = {"POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false", "POWERTOOLS_TRACER_CAPTURE_ERROR": "false"}
    assert {name: global_environment.get(name) for name in switches} == switches
    for function_id in template.function_ids():
        environment = template.function(function_id).environment
        assert {name: environment.get(name) for name in switches} == switches, function_id


def aws_call_limits(template: Template, function_id: str) -> AwsCallLimits:
    environment = template.function(function_id).environment
    return AwsCallLimits.from_environment({name: str(value) for name, value in environment.items()})


def test_every_aws_call_ends_well_within_its_functions_timeout(template: Template) -> None:
    # botocore's own timeouts (60 s to connect, 60 s to read, per attempt) would let one call outlast
    # every function: the invocation would be killed with its work half made.
    for function_id in template.function_ids():
        function = template.function(function_id)
        assert aws_call_limits(template, function_id).worst_call_seconds <= 0.8 * function.timeout_seconds, function_id


def test_the_authorizer_outlasts_a_portal_tokens_two_reads(template: Template) -> None:
    # A portal token is read, then the API key that opened it (hookrelay.api_keys.Authenticator): killed at
    # its timeout between them, the authorizer could not answer its 503, and the gateway would answer 500.
    # Room is left for the rest of the invocation.
    worst_call = aws_call_limits(template, "AuthorizerFunction").worst_call_seconds
    timeout = template.function("AuthorizerFunction").timeout_seconds
    assert 2 * worst_call <= 0.8 * timeout
    # An HTTP API waits 10 s for its authorizer at most (API Gateway's quotas; it cannot be raised).
    assert timeout <= 10


def test_the_delivery_function_outlasts_an_attempt_and_its_batchs_reads(template: Template) -> None:
    # An attempt starts only while the rest of its worst case fits: one still running at the function's
    # timeout would be killed between its send and its record, and sent again.
    timeout = template.resource("DeliveryFunction")["Properties"]["Timeout"]
    send_deadline = float(template.function("DeliveryFunction").environment["HOOKRELAY_SEND_TIMEOUT_SECONDS"])
    aws_call = aws_call_limits(template, "DeliveryFunction").worst_call_seconds
    # The batch's reads before its attempts (its deliveries, its teams' subscriptions) may take one call's
    # worst and leave every attempt room to start.
    assert aws_call + attempt_seconds(send_deadline, aws_call) <= timeout
    sources = [source for source in template.queue_sources() if source.function_id == "DeliveryFunction"]
    assert {source.queue_id for source in sources} == {"DeliveryQueue", "SlowLaneQueue"}
    for source in sources:
        # Every message of a batch is attempted at once, none waits for another's send.
        assert source.batch_size <= SEND_CONCURRENCY
        # AWS requires it of a queue that feeds a function, or a record could come back while it is handled.
        assert template.resource(source.queue_id)["Properties"]["VisibilityTimeout"] >= timeout


def test_the_sweeper_has_time_to_claim_before_it_stops(template: Template) -> None:
    timeout = template.resource("SweeperFunction")["Properties"]["Timeout"]
    aws_call = aws_call_limits(template, "SweeperFunction").worst_call_seconds
    # It stops claiming with stop_seconds left; most of its minute goes to claims.
    assert stop_seconds(aws_call) <= timeout / 4


def test_routes_come_from_the_template(template: Template) -> None:
    routes = {route.route_key: (route.authorizer_function, function) for route, function in template.http_routes()}
    assert routes == {
        "ANY /{proxy+}": ("AuthorizerFunction", "ApiFunction"),
        "GET /v3/openapi.json": (None, "ApiFunction"),
        "GET /v3/docs": (None, "ApiFunction"),
        "GET /portal": (None, "ApiFunction"),
        "GET /portal/{name}": (None, "ApiFunction"),
    }
    ordered = [route.route_key for route, _ in template.http_routes()]
    assert ordered[-1] == "ANY /{proxy+}"


# Concurrency isolation (issue 24): the API cannot starve delivery.

ACCOUNT_CONCURRENCY = 1_000  # Lambda's default quota per region
UNRESERVED_MINIMUM = 100  # what Lambda keeps unreserved for every other function of the account
PARTITION_WRITES_PER_SECOND = 1_000


def default(template: Template, value: Any) -> float:
    """A property's value with the template's parameter defaults."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return float(template.parameter_defaults()[value["Ref"]])
    return float(value)


def test_every_function_reserves_concurrency_within_the_accounts_default(template: Template) -> None:
    reserved = {
        function_id: default(template, template.reserved_concurrency(function_id))
        for function_id in template.function_ids()
    }
    assert all(value >= 1 for value in reserved.values()), reserved
    assert sum(reserved.values()) + UNRESERVED_MINIMUM <= ACCOUNT_CONCURRENCY


@pytest.mark.parametrize("function_id", ["IngestFunction", "DeliveryFunction"])
def test_each_event_source_runs_at_most_its_functions_reserved_concurrency(
    template: Template, function_id: str
) -> None:
    sources = [source for source in template.queue_sources() if source.function_id == function_id]
    assert sources
    for source in sources:
        maximum = default(template, source.maximum_concurrency)
        assert 2 <= maximum <= default(template, template.reserved_concurrency(function_id))


def test_the_stage_throttles_below_what_the_api_and_authorizer_may_run(template: Template) -> None:
    # A burst the stage lets through must find a free execution, or Lambda's throttle becomes a 500.
    throttling = template.stage_throttling()
    assert throttling is not None
    rate, burst = (default(template, value) for value in throttling)
    assert rate >= 1 and burst >= 1
    for function_id in ("ApiFunction", "AuthorizerFunction"):
        assert burst <= default(template, template.reserved_concurrency(function_id))


def test_no_team_limit_counter_takes_more_than_a_tenth_of_a_partitions_writes(template: Template) -> None:
    # SPEC §8: a counter takes its share of a window's burst plus one refused write per API container
    # (at most the API's reserved concurrency) each window (hookrelay.team_limits).
    environment = template.function("ApiFunction").environment
    containers = default(template, template.reserved_concurrency("ApiFunction"))
    for limit in limits(
        float(environment["HOOKRELAY_TEAM_REQUESTS_PER_SECOND"]), int(environment["HOOKRELAY_TEAM_REQUEST_BURST"])
    ).values():
        largest_share = max(limit.share(shard) for shard in range(limit.shards))
        writes_per_second = (largest_share + containers) / limit.window_seconds
        assert writes_per_second <= PARTITION_WRITES_PER_SECOND / 10, limit


def test_greedy_route_pattern() -> None:
    routes = {route.path: route for route, _ in Template.read(TEMPLATE).http_routes()}
    assert routes["/{proxy+}"].pattern.match("/v3/webhooks/abc")
    assert not routes["/v3/docs"].pattern.match("/v3/docs/x")


# Monitoring (SPEC §6): what an operator relies on when the stack is deployed.

ALARM = "AWS::CloudWatch::Alarm"
NOTIFY_TOPIC = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def of_type(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in template.resources.items()
        if resource.get("Type") == resource_type
    }


def redrive_dead_letter_queues(template: Template) -> dict[str, set[str]]:
    """The queues SQS moves messages to (a queue's RedrivePolicy), with the queues it moves them from."""
    sources: dict[str, set[str]] = {}
    for queue_id, properties in of_type(template, "AWS::SQS::Queue").items():
        if "RedrivePolicy" in properties:
            sources.setdefault(properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0], set()).add(queue_id)
    return sources


def rule_dead_letter_queues(template: Template) -> dict[str, str]:
    """The queues EventBridge parks events in (a rule target's DeadLetterConfig), with that target."""
    return {
        target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]: target["Arn"]["Fn::GetAtt"][0]
        for properties in of_type(template, "AWS::Events::Rule").values()
        for target in properties.get("Targets") or []
        if "DeadLetterConfig" in target
    }


def dead_letter_queues(template: Template) -> set[str]:
    return set(redrive_dead_letter_queues(template)) | set(rule_dead_letter_queues(template))


def queue_alarms(template: Template, metric_name: str) -> dict[str, dict[str, Any]]:
    """Alarms on an AWS/SQS metric, by the queue they watch."""
    alarms = {}
    for properties in of_type(template, ALARM).values():
        if properties.get("Namespace") == "AWS/SQS" and properties.get("MetricName") == metric_name:
            (dimension,) = properties["Dimensions"]
            assert dimension["Name"] == "QueueName"
            alarms[dimension["Value"]["Fn::GetAtt"][0]] = properties
    return alarms


def emitted_metrics(template: Template) -> tuple[str, dict[str, str]]:
    """The namespace and dimensions powertools Metrics gives every EMF metric, as deployed."""
    environment = template.function("DeliveryFunction").environment
    return environment["POWERTOOLS_METRICS_NAMESPACE"], {"service": environment["POWERTOOLS_SERVICE_NAME"]}


def test_every_dead_letter_queue_alarms_as_soon_as_it_holds_a_message(template: Template) -> None:
    dlqs = dead_letter_queues(template)
    assert dlqs == {"DeliveryDeadLetterQueue", "EventsDeadLetterQueue", "EventBridgeDeadLetterQueue"}
    alarms = queue_alarms(template, "ApproximateNumberOfMessagesVisible")
    for dlq in dlqs:
        alarm = alarms[dlq]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 60, 1)


def test_every_alarm_notifies_the_topic_when_one_is_given(template: Template) -> None:
    parameter = template.document["Parameters"]["AlarmTopicArn"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert template.document["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    alarms = of_type(template, ALARM)
    assert set(alarms) >= {
        "DeliveryDeadLetterAlarm",
        "EventsDeadLetterAlarm",
        "EventBridgeDeadLetterAlarm",
        "DeliveryFailureRateAlarm",
        "SweeperErrorsAlarm",
        "IngestBacklogAlarm",
    }
    for logical_id, alarm in alarms.items():
        assert alarm["AlarmActions"] == NOTIFY_TOPIC, logical_id
        assert alarm["OKActions"] == NOTIFY_TOPIC, logical_id
        assert alarm["TreatMissingData"] == "notBreaching", logical_id


def test_failure_rate_alarm_divides_failed_attempts_by_attempts_of_the_emitted_metrics(template: Template) -> None:
    alarm = of_type(template, ALARM)["DeliveryFailureRateAlarm"]
    namespace, dimensions = emitted_metrics(template)
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    stats = {query["MetricStat"]["Metric"]["MetricName"]: query for query in queries.values() if "MetricStat" in query}
    assert set(stats) == {"DeliveryAttemptsFailed", "DeliveryAttempts"}
    for query in stats.values():
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == namespace
        assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == dimensions
        assert (query["MetricStat"]["Stat"], query["MetricStat"]["Period"], query["ReturnData"]) == ("Sum", 300, False)
    (rate,) = [query for query in queries.values() if query.get("ReturnData", True)]
    failed, attempts = stats["DeliveryAttemptsFailed"]["Id"], stats["DeliveryAttempts"]["Id"]
    # A percentage, of periods with enough attempts to mean something (and never a division by zero).
    assert rate["Expression"] == {
        "Fn::Sub": f"IF({attempts} >= ${{DeliveryFailureRateMinimumAttempts}}, 100 * FILL({failed}, 0) / {attempts}, 0)"
    }
    assert template.parameter_defaults()["DeliveryFailureRateMinimumAttempts"] >= 1
    assert alarm["Threshold"] == {"Ref": "DeliveryFailureRateThreshold"}
    assert template.parameter_defaults()["DeliveryFailureRateThreshold"] == 25
    assert (alarm["ComparisonOperator"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        "GreaterThanThreshold",
        3,
        3,
    )


def test_sweeper_errors_alarm(template: Template) -> None:
    alarm = of_type(template, ALARM)["SweeperErrorsAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "SweeperFunction"}}]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (60, 5, 3)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_ingest_backlog_alarms_on_the_events_queue_only(template: Template) -> None:
    alarms = queue_alarms(template, "ApproximateAgeOfOldestMessage")
    # Delayed retries (DelaySeconds up to 15 min) age on the delivery queue in normal operation.
    assert set(alarms) == {"EventsQueue"}
    alarm = alarms["EventsQueue"]
    assert alarm["Threshold"] == {"Ref": "IngestBacklogAgeSeconds"}
    assert template.parameter_defaults()["IngestBacklogAgeSeconds"] == 300
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (60, 3, 3)


def dashboard(template: Template) -> dict[str, Any]:
    (properties,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    resolver = Intrinsics(
        ref=lambda logical_id: f"physical-{logical_id}",
        get_att=lambda logical_id, attribute: f"{logical_id}.{attribute}",
        pseudo={"AWS::StackName": "st", "AWS::Region": "eu-west-3"},
        parameters=template.parameter_defaults(),
    )
    body: dict[str, Any] = json.loads(resolver.resolve(properties["DashboardBody"]))
    return body


def graphed(widget: dict[str, Any]) -> list[tuple[str, ...]]:
    """A metric widget's metrics as (namespace, name, dimension, value, ..., stat), shorthand expanded.

    "." repeats the item above it; a leading "..." repeats the row above, the given items replacing
    its last ones.
    """
    rows: list[tuple[str, ...]] = []
    previous: list[str] = []
    for row in widget["properties"]["metrics"]:
        options = row[-1] if isinstance(row[-1], dict) else {}
        items = [item for item in row if not isinstance(item, dict)]
        if not items:  # a math expression
            continue
        if items[0] == "...":
            items = previous[: len(previous) - len(items) + 1] + items[1:]
        items = [previous[index] if item == "." else item for index, item in enumerate(items)]
        previous = items
        rows.append((*items, options.get("stat", widget["properties"].get("stat", ""))))
    return rows


def test_dashboard_shows_deliveries_queues_dlqs_functions_and_alarms(template: Template) -> None:
    body = dashboard(template)
    widgets = body["widgets"]
    namespace, dimensions = emitted_metrics(template)
    ((dimension, value),) = dimensions.items()
    rows = {row for widget in widgets if widget["type"] == "metric" for row in graphed(widget)}
    for widget in widgets:
        assert widget["type"] in {"text", "alarm"} or widget["properties"]["region"] == "eu-west-3"

    for name in (
        "DeliveriesDelivered",
        "DeliveryAttemptsFailed",
        "DeliveriesFailed",
        "DeliveryRetriesScheduled",
        "DeliveriesNotSent",
        "DeliveryAttempts",
        "EventsPublished",
        "EventsIngested",
        "DeliveriesEnqueued",
        "DeliveriesEnqueuedToSlowLane",
    ):
        assert (namespace, name, dimension, value, "Sum") in rows, name
    for percentile in ("p50", "p90", "p99"):
        assert (namespace, "DeliveryLatency", dimension, value, percentile) in rows

    for queue in ("EventsQueue", "DeliveryQueue"):
        for depth in ("Visible", "NotVisible", "Delayed"):
            metric = f"ApproximateNumberOfMessages{depth}"
            assert ("AWS/SQS", metric, "QueueName", f"{queue}.QueueName", "Maximum") in rows, (queue, metric)
    for dlq in dead_letter_queues(template):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"{dlq}.QueueName", "Maximum") in rows
    for function_id in template.function_ids():
        for metric, stat in (("Errors", "Sum"), ("Throttles", "Sum"), ("Duration", "p99")):
            row = ("AWS/Lambda", metric, "FunctionName", f"physical-{function_id}", stat)
            assert row in rows, (function_id, metric)

    (status,) = [widget for widget in widgets if widget["type"] == "alarm"]
    assert sorted(status["properties"]["alarms"]) == sorted(f"{alarm}.Arn" for alarm in of_type(template, ALARM))
    thresholds = [
        annotation["value"]
        for widget in widgets
        for annotation in widget["properties"].get("annotations", {}).get("horizontal", [])
    ]
    assert {25, 300} <= set(thresholds)


def test_outputs_name_the_api_every_queue_and_every_table(template: Template) -> None:
    outputs = template.document["Outputs"]
    values = [output["Value"] for output in outputs.values()]
    assert outputs["ApiUrl"]["Value"] == {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    for resource_type in ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::CloudWatch::Dashboard"):
        for logical_id in of_type(template, resource_type):
            assert {"Ref": logical_id} in values, logical_id
    for queue in of_type(template, "AWS::SQS::Queue"):
        assert outputs[f"{queue}Url"]["Value"] == {"Ref": queue}
        assert outputs[f"{queue}Arn"]["Value"] == {"Fn::GetAtt": [queue, "Arn"]}


# Dead-letter queues: what fills each decides how it is redriven (docs/operations/dlq.md).


def test_eventbridge_parks_events_in_a_queue_of_its_own(template: Template) -> None:
    """SQS's message move tasks (the console's "Start DLQ redrive") refuse a DLQ that no SQS queue
    redrives into: the rule's DLQ must not be the events queue's, whose move task would carry the
    rule's failures back with it, nor any other queue's."""
    rule_dlqs = rule_dead_letter_queues(template)
    assert rule_dlqs == {"EventBridgeDeadLetterQueue": "EventsQueue"}
    assert not set(rule_dlqs) & set(redrive_dead_letter_queues(template))
    queues = of_type(template, "AWS::SQS::Queue")
    for dlq in dead_letter_queues(template):
        # Kept as long as SQS keeps anything (14 days), encrypted as the other queues.
        assert (queues[dlq]["MessageRetentionPeriod"], queues[dlq]["SqsManagedSseEnabled"]) == (1209600, True)
    # Only a DLQ SQS moves messages to names its source for the console's redrive.
    assert "RedriveAllowPolicy" not in queues["EventBridgeDeadLetterQueue"]
    assert {dlq for dlq in queues if "RedriveAllowPolicy" in queues[dlq]} == set(redrive_dead_letter_queues(template))


def test_the_rule_may_send_to_its_target_and_to_its_dead_letter_queue(template: Template) -> None:
    rule = of_type(template, "AWS::Events::Rule")["EventsRule"]
    (target,) = rule["Targets"]
    sendable: set[str] = set()
    for policy in of_type(template, "AWS::SQS::QueuePolicy").values():
        for statement in policy["PolicyDocument"]["Statement"]:
            if (
                statement["Effect"] == "Allow"
                and statement["Principal"] == {"Service": "events.amazonaws.com"}
                and statement["Action"] == "sqs:SendMessage"
                and statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["EventsRule", "Arn"]}}}
            ):
                granted = {resource["Fn::GetAtt"][0] for resource in statement["Resource"]}
                sendable |= granted & {queue["Ref"] for queue in policy["Queues"]}
    assert sendable == {target["Arn"]["Fn::GetAtt"][0], target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]}


def test_the_rule_sends_whole_events_which_is_what_its_dlq_holds(template: Template) -> None:
    # `hookrelay dlq redrive --queue eventbridge` sends a parked event's body to the events queue as it
    # is: right only while the rule's target transforms nothing.
    (target,) = of_type(template, "AWS::Events::Rule")["EventsRule"]["Targets"]
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)


def test_the_cli_redrives_every_dead_letter_queue_to_its_source(template: Template) -> None:
    redriven_by_sqs = redrive_dead_letter_queues(template)
    sources = {**redriven_by_sqs, **{dlq: {source} for dlq, source in rule_dead_letter_queues(template).items()}}
    assert tuple(DEAD_LETTER_QUEUES) == DLQ_NAMES
    assert {queue.logical_id for queue in DEAD_LETTER_QUEUES.values()} == set(sources)
    for queue in DEAD_LETTER_QUEUES.values():
        assert queue.source_logical_id in sources[queue.logical_id], queue.logical_id
    # The slow lane's failures share the delivery DLQ and go back to the delivery queue, which moves those
    # of endpoints still slow to the slow lane again.
    assert redriven_by_sqs["DeliveryDeadLetterQueue"] == {"DeliveryQueue", "SlowLaneQueue"}
    for queue in DEAD_LETTER_QUEUES.values():
        assert queue.filled_by_sqs == (queue.logical_id in redriven_by_sqs), queue.logical_id


# Logs: each function's, kept LogRetentionInDays and deleted with the stack.


def test_every_function_logs_to_a_log_group_of_the_stack(template: Template) -> None:
    parameter = template.document["Parameters"]["LogRetentionInDays"]
    assert (parameter["Type"], parameter["Default"]) == ("Number", 30)
    groups = of_type(template, "AWS::Logs::LogGroup")
    functions = of_type(template, "AWS::Lambda::Function")
    assert functions
    used = set()
    for function_id, properties in functions.items():
        # Named by LoggingConfig, the group exists before its function (CloudFormation orders them by the
        # reference), so no invocation creates an unowned /aws/lambda/<function> group first.
        group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert group_id not in used, function_id
        used.add(group_id)
        assert groups[group_id]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
        assert "DeletionPolicy" not in template.resource(group_id)  # deleted with the stack
    assert used == set(groups)


def test_the_rate_keys_write_pacing_counts_every_delivery_container(template: Template) -> None:
    # Each container writes a rate# item at most every reserve_spacing_seconds(HOOKRELAY_DELIVERY_CONTAINERS):
    # the item's writes a second stay within RATE_KEY_WRITES_PER_SECOND only while no more containers than
    # that deliver.
    # Both lanes' invocations count against the function's reserved concurrency, which bounds them together.
    scaling = {
        properties["EventSourceArn"]["Fn::GetAtt"][0]: properties["ScalingConfig"]["MaximumConcurrency"]
        for _, properties in template.of_type("AWS::Lambda::EventSourceMapping")
        if properties["FunctionName"] == {"Ref": "DeliveryFunction"}
    }
    reserved = template.resource("DeliveryFunction")["Properties"]["ReservedConcurrentExecutions"]
    containers = template.function("DeliveryFunction").environment["HOOKRELAY_DELIVERY_CONTAINERS"]
    assert reserved == containers == {"Ref": "DeliveryReservedConcurrency"}
    # Each lane takes at most its own share, so slow endpoints leave the rest to the others.
    assert scaling == {
        "DeliveryQueue": {"Ref": "DeliveryQueueConcurrency"},
        "SlowLaneQueue": {"Ref": "SlowLaneConcurrency"},
    }


def test_no_function_s_event_sources_may_run_more_than_its_reserved_concurrency(template: Template) -> None:
    # Event source mappings do not count reserved concurrency: Lambda throttles what they invoke beyond it,
    # and a throttled SQS batch comes back only after the visibility timeout, one receive nearer the DLQ
    # (AWS's "configuring maximum concurrency for Amazon SQS event sources": not above reserved concurrency).
    defaults = template.parameter_defaults()

    def value(setting: Any) -> int:
        return int(defaults[setting["Ref"]]) if isinstance(setting, dict) else int(setting)

    most: Counter[str] = Counter()
    for _, properties in template.of_type("AWS::Lambda::EventSourceMapping"):
        most[properties["FunctionName"]["Ref"]] += value(properties["ScalingConfig"]["MaximumConcurrency"])
    assert most
    for function_id, invocations in most.items():
        reserved = value(template.resource(function_id)["Properties"]["ReservedConcurrentExecutions"])
        assert invocations <= reserved, f"{function_id}: its event sources may run {invocations}, {reserved} reserved"
