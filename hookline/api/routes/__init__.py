"""The API's routes, one module per resource, and what they share in the OpenAPI document."""

from typing import Annotated, Any

from fastapi import Path

Responses = dict[int | str, dict[str, Any]]

NOT_FOUND: Responses = {404: {"description": "No such webhook in this organization."}}

WebhookId = Annotated[str, Path(description="The webhook's id, such as `wh_abc123def4`.")]
