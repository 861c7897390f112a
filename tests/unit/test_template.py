import pytest

from hookrelay.settings import Settings
from hookrelay_cli.template import Intrinsics, Template, TemplateError
from paths import TEMPLATE


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.read(TEMPLATE)


def intrinsics() -> Intrinsics:
    return Intrinsics(
        ref=lambda logical_id: f"physical-{logical_id}",
        get_att=lambda logical_id, attribute: f"{logical_id}.{attribute}",
        pseudo={"AWS::StackName": "st", "AWS::Region": "eu-west-3"},
        parameters={"Level": "INFO"},
    )


def test_intrinsics() -> None:
    resolve = intrinsics().resolve
    assert resolve({"Ref": "Queue"}) == "physical-Queue"
    assert resolve({"Ref": "Level"}) == "INFO"
    assert resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "Queue.Arn"
    assert resolve({"Fn::Sub": "${AWS::StackName}-${Queue}-${Queue.Arn}"}) == "st-physical-Queue-Queue.Arn"
    assert resolve({"Fn::Sub": ["${A}/x", {"A": {"Ref": "AWS::Region"}}]}) == "eu-west-3/x"
    assert resolve({"Fn::Join": ["-", ["a", {"Ref": "Queue"}]]}) == "a-physical-Queue"
    assert resolve({"Nested": [{"Ref": "Queue"}]}) == {"Nested": ["physical-Queue"]}
    with pytest.raises(TemplateError, match="Fn::If"):
        resolve({"Fn::If": ["c", 1, 2]})


def test_every_setting_is_declared_in_globals_and_nothing_else(template: Template) -> None:
    # One settings module reads exactly the variables template.yaml declares for every function.
    declared = {name for name in template.function("ApiFunction").environment if name.startswith("HOOKRELAY_")}
    read = {field.alias for field in Settings.model_fields.values()}
    assert declared == read


def test_routes_come_from_the_template(template: Template) -> None:
    routes = {route.route_key: (route.authorizer_function, function) for route, function in template.http_routes()}
    assert routes == {
        "ANY /{proxy+}": ("AuthorizerFunction", "ApiFunction"),
        "GET /v3/openapi.json": (None, "ApiFunction"),
        "GET /v3/docs": (None, "ApiFunction"),
    }
    ordered = [route.route_key for route, _ in template.http_routes()]
    assert ordered[-1] == "ANY /{proxy+}"


def test_greedy_route_pattern() -> None:
    routes = {route.path: route for route, _ in Template.read(TEMPLATE).http_routes()}
    assert routes["/{proxy+}"].pattern.match("/v3/webhooks/abc")
    assert not routes["/v3/docs"].pattern.match("/v3/docs/x")
