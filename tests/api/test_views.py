"""The channel views show every field of the channels' configs, each secret redacted."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from hookline.api.channel_views import (
    EmailConfigsView,
    ExpiringSecretView,
    HttpConfigsView,
    SlackConfigsView,
    SmsConfigsView,
    WrittenHttpConfigsView,
)
from hookline.schemas import (
    EmailConfigs,
    ExpiringSecret,
    HttpConfigs,
    SlackConfigs,
    SmsConfigs,
)

PAIRS = [
    (HttpConfigs, HttpConfigsView),
    (HttpConfigs, WrittenHttpConfigsView),
    (ExpiringSecret, ExpiringSecretView),
    (SlackConfigs, SlackConfigsView),
    (EmailConfigs, EmailConfigsView),
    (SmsConfigs, SmsConfigsView),
]


@pytest.mark.parametrize(("configs", "view"), PAIRS, ids=lambda model: model.__name__)
def test_a_view_has_the_fields_of_its_configs(
    configs: type[BaseModel], view: type[BaseModel]
) -> None:
    assert set(view.model_fields) == set(configs.model_fields)
