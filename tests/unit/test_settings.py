import pytest
from offline_settings import RESOURCES

from hookrelay.settings import AwsCallLimits, Settings, SettingsError
from hookrelay.transport import CONNECT_TIMEOUT_SECONDS, TOTAL_TIMEOUT_SECONDS
from hookrelay_cli.template import Template
from paths import TEMPLATE


def test_send_timeouts_default_to_the_transports() -> None:
    settings = Settings.from_environment(RESOURCES)
    assert settings.send_connect_timeout_seconds == CONNECT_TIMEOUT_SECONDS == 5
    assert settings.send_timeout_seconds == TOTAL_TIMEOUT_SECONDS == 15


def test_send_timeouts_are_configurable() -> None:
    settings = Settings.from_environment(
        {**RESOURCES, "HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS": "0.5", "HOOKRELAY_SEND_TIMEOUT_SECONDS": "1"}
    )
    assert (settings.send_connect_timeout_seconds, settings.send_timeout_seconds) == (0.5, 1.0)


@pytest.mark.parametrize(
    ("connect", "total", "complaint"),
    [
        ("0", "15", "greater than 0"),
        ("5", "-1", "greater than 0"),
        ("5", "soon", "valid number"),
        ("10", "5", "CONNECT_TIMEOUT_SECONDS \\(10\\) is longer than HOOKRELAY_SEND_TIMEOUT_SECONDS \\(5\\)"),
    ],
)
def test_wrong_send_timeouts_fail_at_start(connect: str, total: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_environment(
            {**RESOURCES, "HOOKRELAY_SEND_CONNECT_TIMEOUT_SECONDS": connect, "HOOKRELAY_SEND_TIMEOUT_SECONDS": total}
        )


def test_a_team_may_have_1000_subscriptions_unless_configured() -> None:
    assert Settings.from_environment(RESOURCES).max_subscriptions_per_team == 1000
    configured = Settings.from_environment({**RESOURCES, "HOOKRELAY_MAX_SUBSCRIPTIONS_PER_TEAM": "20"})
    assert configured.max_subscriptions_per_team == 20
    with pytest.raises(SettingsError, match="greater than or equal to 1"):
        Settings.from_environment({**RESOURCES, "HOOKRELAY_MAX_SUBSCRIPTIONS_PER_TEAM": "0"})


def test_the_portal_cannot_be_framed_unless_configured() -> None:
    assert Settings.from_environment(RESOURCES).portal_frame_ancestors == "'none'"
    framed = {**RESOURCES, "HOOKRELAY_PORTAL_FRAME_ANCESTORS": " 'self'  https://app.example.com "}
    assert Settings.from_environment(framed).portal_frame_ancestors == "'self' https://app.example.com"


@pytest.mark.parametrize(
    "ancestors",
    ["", "https://a.example; script-src *", "https://a.example,https://b.example", "'none' https://a.example", "'x'"],
)
def test_frame_ancestors_that_would_change_the_policy_fail_at_start(ancestors: str) -> None:
    with pytest.raises(SettingsError, match="HOOKRELAY_PORTAL_FRAME_ANCESTORS"):
        Settings.from_environment({**RESOURCES, "HOOKRELAY_PORTAL_FRAME_ANCESTORS": ancestors})


def test_aws_calls_default_to_the_templates_limits() -> None:
    globals_ = Template.read(TEMPLATE).document["Globals"]["Function"]["Environment"]["Variables"]
    declared = {name: value for name, value in globals_.items() if name.startswith("HOOKRELAY_AWS_")}
    assert Settings.from_environment(RESOURCES).aws_calls == AwsCallLimits.from_environment(declared)
    # Two attempts of 0.5 s to connect and 1 s to read, and the throttled attempt's backoff (1 s).
    assert Settings.from_environment(RESOURCES).aws_calls.worst_call_seconds == 4.0


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("HOOKRELAY_AWS_CONNECT_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("HOOKRELAY_AWS_READ_TIMEOUT_SECONDS", "never", "a valid number"),
        ("HOOKRELAY_AWS_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ],
)
def test_wrong_aws_call_limits_fail_at_start(name: str, value: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}: should be {complaint}"):
        Settings.from_environment({**RESOURCES, name: value})
    with pytest.raises(SettingsError, match=name):
        AwsCallLimits.from_environment({name: value})
