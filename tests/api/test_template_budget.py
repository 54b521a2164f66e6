"""Templates are tried at save: one that does not compile or is over budget is a 422 naming the
field and the limit; the test-send renders within the same budget."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import WebhookCreate
from tests.api.conftest import WEBHOOKS, Tenant, create, http_channel, webhook_body
from tests.conftest import probing

NESTED_LOOPS = "{% for a in range(3000) %}{% for b in range(3000) %}{% endfor %}{% endfor %}"
LOOPS_OVER_DATA = (
    "{% for a in range(event.data.n) %}{% for b in range(event.data.n) %}{% endfor %}{% endfor %}"
)


def email_channel(**configs: Any) -> dict[str, Any]:
    return {"channel": "email", "configs": {"to_addresses": ["ops@example.com"], **configs}}


REFUSED = [
    pytest.param(
        http_channel(payload_template=NESTED_LOOPS),
        "payload_template",
        "HOOKLINE_TEMPLATE_",
        id="nested loops",
    ),
    pytest.param(
        email_channel(body_template="<p>{{ lipsum(n=100000) }}</p>", content_type="html"),
        "body_template",
        "over the limit of 262,144 (HOOKLINE_TEMPLATE_MAX_OUTPUT)",
        id="lipsum",
    ),
    pytest.param(
        email_channel(subject_template='{{ "x"|center(200000000) }}'),
        "subject_template",
        "over the limit of 262,144 (HOOKLINE_TEMPLATE_MAX_OUTPUT)",
        id="center",
    ),
    pytest.param(
        http_channel(payload_template="{{ event.data.a.b.c.d }}" * 1000),
        "payload_template",
        "over the limit of 4,096 tokens of template syntax (HOOKLINE_TEMPLATE_MAX_TOKENS)",
        id="too much syntax",
    ),
    pytest.param(
        {
            "channel": "sms",
            "configs": {"phone_numbers": ["+15550001111"], "message_template": "{{ x "},
        },
        "message_template",
        "not a valid template",
        id="syntax error",
    ),
    pytest.param(
        http_channel(payload_template="{{ event.__class__.__mro__ }}"),
        "payload_template",
        "is unsafe",
        id="unsafe attribute",
    ),
]


def error_at(response: Any, index: int, field: str) -> str:
    """The message of the 422 error at the template `field` of channel `index`."""
    assert response.status_code == 422, response.text
    location = ["body", "channels", index, "configs", field]
    messages = [e["msg"] for e in response.json()["detail"] if e["loc"] == location]
    assert messages, response.json()
    return str(messages[0])


@pytest.mark.parametrize(("channel", "field", "limit"), REFUSED)
async def test_a_template_over_budget_or_broken_is_refused_at_create(
    alice: Tenant, channel: dict[str, Any], field: str, limit: str
) -> None:
    body = webhook_body(channels=[http_channel(), channel])

    response = await alice.http.post(WEBHOOKS, json=body)

    message = error_at(response, 1, field)
    assert message.startswith(field) and limit in message, message
    assert (await alice.http.get(WEBHOOKS)).json()["data"] == []


async def test_a_patch_with_a_template_over_budget_changes_nothing(alice: Tenant) -> None:
    created = await create(alice)
    path = f"{WEBHOOKS}/{created['webhook_id']}"
    channels = [http_channel(payload_template='{{ "%*s" % (200000000, "x") }}')]

    response = await alice.http.patch(path, json={"channels": channels})

    assert "HOOKLINE_TEMPLATE_MAX_OUTPUT" in error_at(response, 0, "payload_template")
    assert (await alice.http.get(path)).json()["updated_at"] == created["updated_at"]


async def test_templates_that_use_data_the_sample_event_lacks_are_accepted(alice: Tenant) -> None:
    payload = (
        '{"user": {{ event.data.user.name|upper|tojson }}, "rows": ['
        "{% for row in event.data.rows %}{{ row.id }}{{ ',' if not loop.last }}{% endfor %}], "
        '"total": {{ event.data.price * event.data.quantity }}}'
    )
    channels = [
        http_channel(payload_template=payload),
        http_channel(payload_template=LOOPS_OVER_DATA),  # too much only with real data
        email_channel(
            subject_template="{{ event.type }}: {{ event.data.title|truncate(50) }}",
            body_template="<h1>{{ event.data.title }}</h1>{{ event.data.body|wordwrap(72) }}",
            content_type="html",
        ),
    ]

    response = await alice.http.post(WEBHOOKS, json=webhook_body(channels=channels))

    assert response.status_code == 201, response.text


@pytest.mark.alone
async def test_a_test_send_of_a_template_over_budget_fails_at_once(
    alice: Tenant, webhook_store: WebhookStore, receiver: HttpReceiver
) -> None:
    # Saved before templates were tried (the API refuses it now): only the budget stops it.
    body = webhook_body(channels=[http_channel(receiver.url("/in"), payload_template=NESTED_LOOPS)])
    stored = await webhook_store.create(alice.org, WebhookCreate.model_validate(body))

    started = time.monotonic()
    response = await alice.http.post(f"{WEBHOOKS}/{stored.webhook_id}/test")
    took = time.monotonic() - started

    assert response.status_code == 200, response.text
    [attempt] = response.json()["attempts"]
    assert attempt["outcome"] == "permanent"
    assert attempt["error"].startswith("payload_template is over the template budget")
    assert receiver.on("/in") == []
    assert took < 2.0


@pytest.mark.alone
async def test_a_write_full_of_templates_over_budget_never_holds_the_api(alice: Tenant) -> None:
    # Each template runs until its budget stops it; tried on the API's event loop, twenty of
    # them would hold every other organization's calls for twenty budgets in a row.
    channels = [http_channel(payload_template=NESTED_LOOPS) for _ in range(20)]

    async with probing() as probe:
        response = await alice.http.post(WEBHOOKS, json=webhook_body(channels=channels))

    assert "HOOKLINE_TEMPLATE_" in error_at(response, 19, "payload_template")
    assert probe.worst < 0.3, f"the API's event loop was held for {probe.worst:.2f} s"
