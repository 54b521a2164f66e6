"""Schemathesis against the app's own OpenAPI document: no generated request gets a 5xx.

Requests valid and invalid by the document go to the live server with a real API key, so they
get past authentication; every operation gets the same bounded, derandomized set of examples.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from tests.api.conftest import (
    WEBHOOKS,
    Tenant,
    closed_port,
    http_channel,
    keys_of,
    slack_channel,
    webhook_body,
)

EXAMPLES_PER_OPERATION = 25
"""Valid and invalid requests, mixed."""


def no_private_data(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """No response names `internal_id` as a field."""
    if "json" in response.headers.get("content-type", [""])[0]:
        assert "internal_id" not in keys_of(response.json())
    return None


def fuzz(base_url: str, api_key: str, seed: dict[str, Any]) -> None:
    """Run every operation of the served document with generated requests.

    An operation on one webhook also gets examples for a webhook made from `seed` just before,
    so that generated bodies meet stored channels and secrets, not only a 404.
    """
    headers = {"Authorization": f"Bearer {api_key}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    with httpx.Client(base_url=base_url, headers=headers) as client:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            operation = result.ok()
            targets: list[dict[str, Any]] = [{}]
            if "{webhook_id}" in operation.path:
                made = client.post(WEBHOOKS, json=seed).raise_for_status().json()
                targets.append({"webhook_id": made["webhook_id"]})
            cases = st.one_of(
                [
                    operation.as_strategy(mode, headers=headers, path_parameters=target)
                    for mode in GenerationMode
                    for target in targets
                ]
            )
            _check_all(cases, base_url, headers)


def _check_all(cases: st.SearchStrategy[Case[Any]], base_url: str, headers: dict[str, str]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def call(case: Case[Any]) -> None:
        case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=[not_a_server_error, no_private_data],
            timeout=30,
        )

    call()


@pytest.mark.timeout(180)
async def test_generated_requests_never_get_a_server_error(api_url: str, alice: Tenant) -> None:
    # Deliveries of test-sends go to a closed local port: nothing leaves the machine.
    nowhere = f"http://127.0.0.1:{closed_port()}"
    seed = webhook_body(
        channels=[http_channel(f"{nowhere}/in"), slack_channel(webhook_url=f"{nowhere}/slack")]
    )
    # Schemathesis calls are blocking: they run in a thread while this loop serves the API.
    await asyncio.to_thread(fuzz, api_url, alice.api_key, seed)
