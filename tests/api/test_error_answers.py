"""Error answers never echo what the request sent: a body or a parameter may hold a secret."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import WEBHOOKS, Tenant, http_channel, slack_channel, webhook_body
from tests.api.test_secrets import SECRET, SLACK_URL

BODY = json.dumps(
    webhook_body(channels=[http_channel(secret=SECRET), slack_channel(webhook_url=SLACK_URL)])
)


def assert_nothing_echoed(text: str) -> None:
    assert SECRET not in text and "sl4ck-s3cret" not in text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (BODY, "text/plain"),
        (BODY, "application/x-www-form-urlencoded"),
        (f"[{BODY}]", "application/json"),
        (json.dumps(SECRET), "application/json"),
    ],
    ids=["text", "form", "a-list", "a-string"],
)
async def test_a_body_refused_whole_is_answered_without_the_body(
    alice: Tenant, content: str, content_type: str
) -> None:
    response = await alice.http.post(
        WEBHOOKS, content=content, headers={"Content-Type": content_type}
    )

    assert response.status_code == 422
    assert_nothing_echoed(response.text)
    [error] = response.json()["detail"]
    assert error == {"type": "dict_type", "loc": ["body"], "msg": error["msg"]}


async def test_a_body_that_is_not_json_is_a_400_without_the_body(alice: Tenant) -> None:
    response = await alice.http.post(
        WEBHOOKS, content=BODY[:-1], headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("the request body is not valid JSON at character")
    assert_nothing_echoed(response.text)


@pytest.mark.parametrize("query", [{"limit": SECRET}, {"cursor": SECRET * 3}])
async def test_an_invalid_parameter_is_answered_without_its_value(
    alice: Tenant, query: dict[str, str]
) -> None:
    response = await alice.http.get(WEBHOOKS, params=query)

    assert response.status_code == 422
    assert_nothing_echoed(response.text)
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", *query]
