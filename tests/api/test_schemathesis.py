"""Schemathesis with every check against the served OpenAPI document: the document tells the truth.

A full schemathesis run (its examples, coverage, fuzzing and stateful phases, as `st run --checks
all` does) goes to the live API on real Redis with a real API key. Every answer must be one the
operation documents, with the body and headers it documents; what the request schemas accept
must be accepted and what they refuse must be refused; authentication must be enforced; a
deleted webhook must be gone. A second, short run without a key gets the documented 401s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.engine import events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

from hookline.api import create_app
from hookline.registry import ApiKeyStore
from hookline.schemas import new_organization_id
from hookline.settings import QuotaSettings, Settings
from tests.api.conftest import (
    WEBHOOKS,
    http_channel,
    keys_of,
    serve,
    slack_channel,
    webhook_body,
)
from tests.conftest import free_port, with_own_topics

EXAMPLES_PER_OPERATION = 8
"""Fuzzed examples of each operation; the coverage phase's own cases come on top."""
STATEFUL_STEPS = 30
SEED = 34
TEST_SEND = "POST /v1/organizations/webhooks/{webhook_id}/test"
REPLAY = "POST /v1/organizations/webhooks/{webhook_id}/replay"

# Templates must compile and render (format `jinja`), which no JSON Schema keyword states: the
# run draws them from text and a few tags, as a client writes them.
_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="{}%#"
    ),
    max_size=20,
)
_TAGS = st.sampled_from(
    [
        "{{ event.type }}",
        "{{ event.data | tojson }}",
        "{% if event.data %}yes{% endif %}",
        "{# a #}",
    ]
)
schemathesis.openapi.format("jinja", st.lists(_TEXT | _TAGS, min_size=1, max_size=4).map("".join))


def a_replay_window_that_has_begun(ctx: HookContext, body: Any) -> bool:
    """A replay's `since` is not in the future and its `until` not before `since`: rules the
    document states in words, since JSON Schema cannot compare a value with another or with the
    clock."""
    replay = ctx.operation is not None and ctx.operation.label == REPLAY
    if not replay or not isinstance(body, dict):
        return True
    try:
        since, until = _utc(body.get("since")), _utc(body.get("until"))
    except OverflowError:
        return False  # before year 1 or after 9999 in UTC: refused, as the words say
    return not (since and since > datetime.now(UTC)) and not (since and until and until < since)


schemathesis.hook("filter_body")(a_replay_window_that_has_begun)


def _utc(value: Any) -> datetime | None:
    """`value` as a UTC time, if it is an RFC 3339 one."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed and parsed.tzinfo else None


@schemathesis.check
def no_private_data(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """No answer names `internal_id` as a field."""
    if "json" in response.headers.get("content-type", [""])[0]:
        assert "internal_id" not in keys_of(response.json())
    return None


@dataclass
class Fuzzed:
    """The API under test, an organization's key for the run, and a webhook of another
    organization that only the test-send operation reaches."""

    url: str
    api_key: str
    test_send_key: str
    test_send_webhook: str


@pytest.fixture
async def fuzzed(settings: Settings, api_keys: ApiKeyStore) -> AsyncIterator[Fuzzed]:
    # Limits a run would otherwise reach: they answer 429 or 422 by the organization's state, not
    # by the request. The quotas that JSON Schema can state stay as they are, and the document
    # states them; to, cc and bcc together (HOOKLINE_MAX_EMAIL_RECIPIENTS) it cannot. Replays
    # read topics of the test's own, empty: none is past its retention or too large to count.
    quotas = QuotaSettings(
        max_webhooks_per_organization=100_000,
        max_email_recipients=150,
        test_sends_per_webhook_per_minute=10_000,
        test_sends_per_organization_per_minute=10_000,
        api_requests_per_minute=1_000_000,
        auth_failures_per_client=10_000,
    )
    under_test = with_own_topics(settings, "openapi", quotas=quotas)
    async with serve(create_app(under_test)) as url:
        test_send_key = await api_keys.create(new_organization_id())
        # Test sends go to a closed local port: nothing leaves the machine.
        nowhere = f"http://127.0.0.1:{free_port()}"
        channels = [http_channel(f"{nowhere}/in"), slack_channel(webhook_url=f"{nowhere}/slack")]
        async with httpx.AsyncClient(base_url=url) as client:
            made = await client.post(
                WEBHOOKS,
                json=webhook_body(channels=channels),
                headers={"Authorization": f"Bearer {test_send_key}"},
            )
        yield Fuzzed(
            url,
            await api_keys.create(new_organization_id()),
            test_send_key,
            made.raise_for_status().json()["webhook_id"],
        )


@dataclass
class Run:
    """What a schemathesis run found, each with a curl command that repeats it, and the status
    codes each operation answered."""

    problems: list[str]
    answers: dict[str, set[int]]


def run(url: str, config: dict[str, Any], examples: int = EXAMPLES_PER_OPERATION) -> Run:
    """A schemathesis run with every check (`--checks all`) against `url`'s document."""
    base = {
        "seed": SEED,
        "workers": 1,
        "cache": {"enabled": False},
        "checks": {"enabled": True},
        "generation": {
            "mode": "all",
            "max-examples": examples,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
    }
    schema = schemathesis.openapi.from_url(
        f"{url}/openapi.json", config=schemathesis.Config.from_dict({**base, **config})
    )
    found: dict[str, str] = {}
    answers: dict[str, set[int]] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            found.update(_failures(event.recorder))
            for case_id, interaction in event.recorder.interactions.items():
                if interaction.response is not None:
                    label = event.recorder.cases[case_id].value.operation.label
                    answers.setdefault(label, set()).add(interaction.response.status_code)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            found.setdefault(f"error: {event}", "")
    return Run([f"{problem}\n{curl}" for problem, curl in found.items()], answers)


def _failures(recorder: ScenarioRecorder) -> dict[str, str]:
    """Each failed check of a scenario, described, with the curl command of its case."""
    return {
        f"{node.failure_info.failure.operation}: {node.failure_info.failure.title}\n"
        f"{node.failure_info.failure.message}": recorder.cases[case_id].value.as_curl_command()
        for case_id, nodes in recorder.checks.items()
        for node in nodes
        if node.failure_info is not None
    }


@pytest.mark.timeout(180)
async def test_the_document_tells_the_truth_under_every_check(fuzzed: Fuzzed) -> None:
    config = {
        "headers": {"Authorization": f"Bearer {fuzzed.api_key}"},
        "operations": [
            {
                "include-name": TEST_SEND,
                "headers": {"Authorization": f"Bearer {fuzzed.test_send_key}"},
                "parameters": {"path.webhook_id": fuzzed.test_send_webhook},
            }
        ],
    }
    # Schemathesis calls are blocking: they run in a thread while this loop serves the API.
    found = await asyncio.to_thread(run, fuzzed.url, config)

    assert not found.problems, "\n\n".join(found.problems)


@pytest.mark.timeout(120)
async def test_without_a_key_every_operation_answers_the_documented_401(fuzzed: Fuzzed) -> None:
    config = {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}

    found = await asyncio.to_thread(run, fuzzed.url, config, 4)

    assert not found.problems, "\n\n".join(found.problems)
    async with httpx.AsyncClient(base_url=fuzzed.url) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    operations = {
        f"{m.upper()} {p}" for p, methods in paths.items() if "/v1/" in p for m in methods
    }
    calls = {label: codes for label, codes in found.answers.items() if " /v1/" in label}
    assert set(calls) == operations
    assert all(401 in codes and not any(200 <= c < 300 for c in codes) for codes in calls.values())
