"""The demo's settings: local services, the stand-ins as peers, and names of the run's own."""

from __future__ import annotations

from pydantic import SecretStr

from hookline.demo.peers.twilio_api import TwilioStandIn
from hookline.demo.receivers import Receivers
from hookline.demo.services import HOST, KAFKA_BOOTSTRAP, REDIS_URL
from hookline.registry.encryption import RecordCipher
from hookline.settings import Settings, SlackSettings, SmtpSettings, TwilioSettings

RETRY_SCHEDULE = [1.0, 2.0]
"""Seconds before each durable retry: the failing endpoint is dead-lettered within seconds."""
BREAKER_COOLDOWN = 2.0
DEFERRAL_MAX_AGE = 10.0
"""Seconds its deliveries may be held back by its open breaker before they are dead-lettered."""


def demo_settings(base: Settings, run: str, receivers: Receivers) -> Settings:
    """`base` pointed at the local services and stand-ins, with names no other run shares;
    a secret key of the run's own unless HOOKLINE_SECRET_KEYS gives one."""
    name = f"hookline-demo-{run}"
    secret_keys = base.secret_keys or SecretStr(RecordCipher.generate_key())
    return base.model_copy(
        update={
            "kafka_bootstrap_servers": KAFKA_BOOTSTRAP,
            "redis_url": REDIS_URL,
            "redis_key_prefix": name,
            "topics": [f"{name}.events"],
            "consumer_group": name,
            "retry_topic_prefix": f"{name}.retry",
            "dlq_topic": f"{name}.dlq",
            "retry_schedule": RETRY_SCHEDULE,
            "breaker_cooldown": BREAKER_COOLDOWN,
            "deferral_max_age": DEFERRAL_MAX_AGE,
            "allow_private_destinations": True,
            "metrics_host": HOST,
            "metrics_port": 0,
            "shutdown_timeout": 5.0,
            "secret_keys": secret_keys,
            "slack": SlackSettings(api_url=receivers.slack.api_url),
            "smtp": _smtp(receivers),
            "twilio": twilio_settings(receivers.twilio),
        }
    )


def _smtp(receivers: Receivers) -> SmtpSettings:
    # Every field given: the stand-in takes no login or TLS, whatever HOOKLINE_SMTP_* says.
    return SmtpSettings(
        host=receivers.smtp.host,
        port=receivers.smtp.port,
        username=None,
        password=None,
        from_address="hookline-demo@example.com",
        starttls=False,
        tls=False,
    )


def twilio_settings(twilio: TwilioStandIn) -> TwilioSettings:
    """Settings that send SMS through the Twilio stand-in `twilio`."""
    return TwilioSettings(
        account_sid=twilio.account_sid,
        auth_token=SecretStr(twilio.auth_token),
        from_number=twilio.from_number,
        messaging_service_sid=None,
        api_url=twilio.base_url,
    )
