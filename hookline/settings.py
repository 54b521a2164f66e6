"""Configuration from `HOOKLINE_*` environment variables, loaded once and passed down."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hookline.errors import ConfigurationError
from hookline.schemas.webhooks import MAX_CHANNELS

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `500ms`, `5s`, `30m`, `2h` (a bare number is seconds)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 5s, 30m or 2h")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class SlackSettings(BaseSettings):
    """Where the Slack Web API is reached."""

    model_config = SettingsConfigDict(env_prefix="HOOKLINE_SLACK_", frozen=True)

    api_url: str = "https://slack.com/api/"


class SmtpSettings(BaseSettings):
    """The SMTP server that email deliveries go through."""

    model_config = SettingsConfigDict(
        env_prefix="HOOKLINE_SMTP_", frozen=True, populate_by_name=True
    )

    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field("hookline@localhost", validation_alias="HOOKLINE_SMTP_FROM")
    starttls: bool = False
    tls: bool = False
    timeout: float = Field(30.0, gt=0, le=300)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Self:
        if self.starttls and self.tls:
            raise ValueError("set HOOKLINE_SMTP_STARTTLS or HOOKLINE_SMTP_TLS, not both")
        return self


class TwilioSettings(BaseSettings):
    """The Twilio account that SMS deliveries are sent from."""

    model_config = SettingsConfigDict(env_prefix="HOOKLINE_TWILIO_", frozen=True)

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = None
    messaging_service_sid: str | None = None
    api_url: str = "https://api.twilio.com"


class QuotaSettings(BaseSettings):
    """Quotas and rate limits: what one organization, API key or client may use."""

    model_config = SettingsConfigDict(env_prefix="HOOKLINE_", frozen=True)

    max_webhooks_per_organization: int = Field(100, ge=1, le=100_000)
    max_channels_per_webhook: int = Field(MAX_CHANNELS, ge=1, le=MAX_CHANNELS)
    max_email_recipients: int = Field(50, ge=1, le=150)
    """To, cc and bcc of one email channel together (the schema allows 50 in each)."""
    max_sms_recipients: int = Field(20, ge=1, le=20)
    test_sends_per_webhook_per_minute: int = Field(5, ge=1, le=10_000)
    test_sends_per_organization_per_minute: int = Field(20, ge=1, le=10_000)
    api_requests_per_minute: int = Field(600, ge=1, le=1_000_000)
    """Per API key."""
    auth_failures_per_client: int = Field(10, ge=1, le=10_000)
    auth_failure_window: int = Field(300, ge=1, le=86_400)
    """Seconds over which a client's failed authentications are counted."""
    org_sms_per_window: int = Field(0, ge=0, le=1_000_000)
    """Texts (one per phone number) an organization may send per `org_send_window`; 0 is
    unlimited."""
    org_emails_per_window: int = Field(0, ge=0, le=1_000_000)
    """Emails (one per delivery, whatever its recipients) an organization may send per
    `org_send_window`; 0 is unlimited."""
    org_send_window: int = Field(60, ge=1, le=86_400)
    """Seconds over which an organization's texts and emails are counted."""

    @field_validator("auth_failure_window", "org_send_window", mode="before")
    @classmethod
    def _whole_seconds(cls, value: Any) -> Any:
        return math.ceil(parse_duration(value)) if isinstance(value, str) else value

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable that sets `field`: `HOOKLINE_<FIELD>`."""
        return f"{cls.model_config.get('env_prefix', '')}{field.upper()}"

    def named(self, field: str) -> str:
        """`HOOKLINE_<FIELD>=<value>`, for messages that name a limit and where it is set."""
        return f"{self.env_name(field)}={getattr(self, field)}"


class TemplateBudget(BaseSettings):
    """What rendering one user-supplied template may spend, so that no template can hold up the
    event loop or exhaust memory; a template over budget fails its delivery permanently."""

    model_config = SettingsConfigDict(env_prefix="HOOKLINE_TEMPLATE_", frozen=True)

    time_budget: float = Field(0.1, gt=0, le=10)
    """Seconds of CPU one render may take (a duration such as `100ms`)."""
    max_output: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Characters a rendered template may have; also the most characters or items any one value
    it builds (a string, a list, a padded width) may hold."""
    max_iterations: int = Field(100_000, ge=100, le=10_000_000)
    """Loop iterations of one render, all loops and item-by-item filters together."""
    max_memory: int = Field(8 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    """Bytes of values one render may build, each counted with everything it holds."""
    max_tokens: int = Field(4096, ge=64, le=1_000_000)
    """Tokens of template syntax a template may have, which bounds the time to compile it."""

    @field_validator("time_budget", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _output_fits_memory(self) -> Self:
        # A character may take four bytes, and the output is a value the render builds.
        if self.max_memory < 4 * self.max_output:
            raise ValueError(
                "HOOKLINE_TEMPLATE_MAX_MEMORY must be at least four times "
                "HOOKLINE_TEMPLATE_MAX_OUTPUT, so that the largest output fits"
            )
        return self


class Settings(BaseSettings):
    """Every setting of hookline; parts receive the slice they need."""

    model_config = SettingsConfigDict(env_prefix="HOOKLINE_", frozen=True)

    kafka_bootstrap_servers: str = Field("localhost:9092", min_length=1)
    redis_url: str = "redis://localhost:6379/0"
    redis_key_prefix: str = Field("hookline", pattern=r"^[A-Za-z0-9_.:-]+$")
    topics: Annotated[list[str], NoDecode] = Field(default=["events"], min_length=1)
    consumer_group: str = Field("hookline-worker", min_length=1)
    dlq_topic: str = Field("hookline.dlq", min_length=1)
    retry_schedule: Annotated[list[float], NoDecode] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 36000], min_length=1
    )
    retry_topic_prefix: str = Field("hookline.retry", min_length=1)
    topic_partitions: int = Field(4, ge=1, le=10_000)
    topic_replication_factor: int = Field(1, ge=1, le=10)
    shutdown_timeout: float = Field(30.0, gt=0)
    max_in_flight: int = Field(5000, ge=1, le=100_000)
    """Enough to keep healthy deliveries flowing for the second it takes to find a destination
    that stopped answering (its deliveries wait meanwhile): a second at full speed, and more."""
    endpoint_concurrency: int = Field(64, ge=1, le=10_000)
    host_concurrency: int = Field(256, ge=1, le=100_000)
    breaker_threshold: int = Field(5, ge=1)
    breaker_cooldown: float = Field(30.0, gt=0)
    slow_delivery_after: float = Field(2.0, gt=0, le=3600)
    """Seconds after which a delivery still under way leaves its partition for the retry path."""
    deferral_max_age: float = Field(2 * 86400.0, gt=0)
    blip_retry_delay: float = Field(0.2, ge=0, le=10)
    delivered_ttl: float = Field(7 * 86400.0, gt=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9100, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    allow_private_destinations: bool = False
    cache_ttl: float = Field(60.0, gt=0)
    disable_after: float = Field(5 * 86400.0, gt=0)
    """Seconds a channel may fail every delivery before it is disabled; its owner is warned at
    half of it (a duration such as `5d`)."""
    operations_topic: str = Field("hookline.operations", min_length=1)
    dead_letter_alert_threshold: int = Field(100, ge=1, le=10_000_000)
    """Dead letters of one organization within `dead_letter_alert_window` that announce
    `dead_letters.threshold_reached` on the operations topic (once per window)."""
    dead_letter_alert_window: float = Field(3600.0, ge=1, le=30 * 86400)
    replay_rate: float = Field(50.0, gt=0, le=100_000)
    """Deliveries per second one worker's replays send, all together: modest, so that live
    deliveries keep the destinations' and the worker's capacity."""
    replay_jobs_per_worker: int = Field(4, ge=1, le=1_000)
    """Replay jobs one worker runs at once, sharing its `replay_rate`."""
    replay_turn: float = Field(30.0, ge=0.1, le=86_400)
    """Seconds a replay job keeps its place in a worker while a job of an organization with
    fewer jobs running there waits for one: then it hands over and queues again (a duration)."""
    replay_dry_run_limit: int = Field(200_000, ge=1, le=100_000_000)
    """Records of the source topics a dry run of an events replay may read."""
    dead_letters_per_webhook: int = Field(10_000, ge=1, le=1_000_000)
    """Dead letters listed (and replayable) per webhook, the most recent; older ones stay on
    the dead-letter topic only."""
    secret_keys: SecretStr | None = None
    """Fernet keys, comma-separated, that encrypt webhooks in Redis: the first encrypts, every
    one decrypts (put a new key first to rotate). The API and the worker refuse to start without."""

    slack: SlackSettings = Field(default_factory=SlackSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    template_budget: TemplateBudget = Field(default_factory=TemplateBudget)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("topics", mode="before")
    @classmethod
    def _topics_from_commas(cls, value: Any) -> Any:
        return _split_commas(value)

    @model_validator(mode="after")
    def _host_above_endpoint(self) -> Self:
        # One endpoint (one organization) must never be able to take a whole host's connections.
        if self.host_concurrency <= self.endpoint_concurrency:
            raise ValueError(
                "HOOKLINE_HOST_CONCURRENCY must be above HOOKLINE_ENDPOINT_CONCURRENCY, so that "
                "one endpoint cannot take all of a host's connections"
            )
        return self

    @field_validator(
        "slow_delivery_after",
        "deferral_max_age",
        "disable_after",
        "dead_letter_alert_window",
        "replay_turn",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _schedule_from_durations(cls, value: Any) -> Any:
        parts = _split_commas(value)
        if isinstance(parts, list):
            return [parse_duration(p) if isinstance(p, str) else p for p in parts]
        return parts


_PREFIXES = {
    cls.__name__: cls.model_config.get("env_prefix", "")
    for cls in (
        Settings,
        SlackSettings,
        SmtpSettings,
        TwilioSettings,
        QuotaSettings,
        TemplateBudget,
    )
}


def _env_name(prefix: str, field: str) -> str:
    if not field:
        return prefix.rstrip("_")
    name = field.upper()
    return name if name.startswith("HOOKLINE_") else prefix + name


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; an invalid value raises ConfigurationError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        prefix = _PREFIXES.get(exc.title, "HOOKLINE_")
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = _env_name(prefix, field)
            problems.append(f"{name}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from exc
