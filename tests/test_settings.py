"""Settings come from HOOKLINE_* variables; a bad value stops start-up naming the variable."""

from __future__ import annotations

import pytest

from hookline.errors import ConfigurationError
from hookline.settings import load_settings, parse_duration


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "TOPICS", "RETRY_SCHEDULE"):
        monkeypatch.delenv(f"HOOKLINE_{name}", raising=False)

    settings = load_settings()

    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.topics == ["events"]
    assert settings.consumer_group == "hookline-worker"
    assert settings.dlq_topic == "hookline.dlq"
    assert settings.retry_schedule == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert settings.allow_private_destinations is False


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("HOOKLINE_TOPICS", "events, audit ,")
    monkeypatch.setenv("HOOKLINE_RETRY_SCHEDULE", "500ms,2s,1m")
    monkeypatch.setenv("HOOKLINE_SMTP_FROM", "alerts@example.com")
    monkeypatch.setenv("HOOKLINE_SMTP_PORT", "2525")
    monkeypatch.setenv("HOOKLINE_TWILIO_API_URL", "http://127.0.0.1:9999")

    settings = load_settings()

    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.topics == ["events", "audit"]
    assert settings.retry_schedule == [0.5, 2, 60]
    assert settings.smtp.from_address == "alerts@example.com"
    assert settings.smtp.port == 2525
    assert settings.twilio.api_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HOOKLINE_REDIS_URL", "http://localhost:6379"),
        ("HOOKLINE_TOPICS", " , "),
        ("HOOKLINE_RETRY_SCHEDULE", "5s,soon"),
        ("HOOKLINE_METRICS_PORT", "70000"),
        ("HOOKLINE_ALLOW_PRIVATE_DESTINATIONS", "perhaps"),
        ("HOOKLINE_SMTP_PORT", "smtp"),
        ("HOOKLINE_SMTP_TLS", "maybe"),
        ("HOOKLINE_SHUTDOWN_TIMEOUT", "-1"),
        ("HOOKLINE_TEMPLATE_TIME_BUDGET", "0s"),
        ("HOOKLINE_TEMPLATE_MAX_OUTPUT", "100"),
        ("HOOKLINE_TEMPLATE_MAX_ITERATIONS", "lots"),
        ("HOOKLINE_DISABLE_AFTER", "0s"),
        ("HOOKLINE_DISABLE_AFTER", "a week"),
        ("HOOKLINE_DEAD_LETTER_ALERT_THRESHOLD", "0"),
        ("HOOKLINE_DEAD_LETTER_ALERT_WINDOW", "500ms"),
        ("HOOKLINE_OPERATIONS_TOPIC", ""),
        ("HOOKLINE_REPLAY_JOBS_PER_WORKER", "0"),
        ("HOOKLINE_REPLAY_TURN", "soon"),
    ],
)
def test_an_invalid_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_endpoint_health_and_operations_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings()
    monkeypatch.setenv("HOOKLINE_DISABLE_AFTER", "36h")
    monkeypatch.setenv("HOOKLINE_OPERATIONS_TOPIC", "ops")
    monkeypatch.setenv("HOOKLINE_DEAD_LETTER_ALERT_THRESHOLD", "25")
    monkeypatch.setenv("HOOKLINE_DEAD_LETTER_ALERT_WINDOW", "15m")
    monkeypatch.setenv("HOOKLINE_REPLAY_JOBS_PER_WORKER", "2")
    monkeypatch.setenv("HOOKLINE_REPLAY_TURN", "2m")

    settings = load_settings()

    assert defaults.disable_after == 5 * 86400
    assert defaults.operations_topic == "hookline.operations"
    assert (defaults.dead_letter_alert_threshold, defaults.dead_letter_alert_window) == (100, 3600)
    assert (settings.disable_after, settings.operations_topic) == (36 * 3600, "ops")
    assert (settings.dead_letter_alert_threshold, settings.dead_letter_alert_window) == (25, 900)
    assert (defaults.replay_jobs_per_worker, defaults.replay_turn) == (4, 30)
    assert (settings.replay_jobs_per_worker, settings.replay_turn) == (2, 120)


def test_the_template_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_TEMPLATE_TIME_BUDGET", "250ms")
    monkeypatch.setenv("HOOKLINE_TEMPLATE_MAX_OUTPUT", "65536")

    budget = load_settings().template_budget

    assert (budget.time_budget, budget.max_output) == (0.25, 65536)
    assert (budget.max_iterations, budget.max_memory) == (100_000, 8 * 1024 * 1024)


def test_a_template_memory_budget_smaller_than_the_output_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOKLINE_TEMPLATE_MAX_MEMORY", "1000000")
    with pytest.raises(ConfigurationError, match="HOOKLINE_TEMPLATE_MAX_MEMORY must be at least"):
        load_settings()


def test_conflicting_tls_modes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_SMTP_TLS", "true")
    monkeypatch.setenv("HOOKLINE_SMTP_STARTTLS", "true")
    with pytest.raises(ConfigurationError, match="HOOKLINE_SMTP_STARTTLS or HOOKLINE_SMTP_TLS"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("5m", 300), ("2h", 7200), ("1d", 86400), ("250ms", 0.25), ("7", 7)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_quotas_come_from_the_environment_within_the_schemas_maxima(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOKLINE_MAX_WEBHOOKS_PER_ORGANIZATION", "7")
    monkeypatch.setenv("HOOKLINE_AUTH_FAILURE_WINDOW", "2m")
    monkeypatch.setenv("HOOKLINE_ORG_SMS_PER_WINDOW", "30")

    quotas = load_settings().quotas

    assert quotas.max_webhooks_per_organization == 7
    assert quotas.auth_failure_window == 120
    assert (quotas.org_sms_per_window, quotas.org_emails_per_window) == (30, 0)
    assert quotas.named("org_send_window") == "HOOKLINE_ORG_SEND_WINDOW=60"
    for variable, value in [
        ("HOOKLINE_MAX_CHANNELS_PER_WEBHOOK", "21"),
        ("HOOKLINE_MAX_SMS_RECIPIENTS", "21"),
    ]:
        monkeypatch.setenv(variable, value)
        with pytest.raises(ConfigurationError, match=variable):
            load_settings()
        monkeypatch.delenv(variable)
