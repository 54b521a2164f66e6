"""The management API: a FastAPI app built from settings, its services opened by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hookline import __version__
from hookline.api.allowed_methods import install_allowed_methods
from hookline.api.body_limit import BodySizeLimit
from hookline.api.document import OpenApiDocument
from hookline.api.errors import install_error_handlers
from hookline.api.routes import (
    channels,
    dead_letters,
    deliveries,
    health,
    notification_contact,
    replays,
    webhooks,
)
from hookline.api.services import ApiServices, open_services
from hookline.registry.encryption import record_cipher
from hookline.settings import Settings

DESCRIPTION = (
    "Manage an organization's webhooks: subscriptions of channels (HTTP endpoints, Slack, "
    "email, SMS) to event types. Every `/v1` call needs `Authorization: Bearer sk_...`, an API "
    "key of the organization; secrets are write-only and show as `**********`."
)


def create_app(settings: Settings) -> FastAPI:
    """The API for `settings`; Redis and the channels are opened when the app starts.

    Raises ConfigurationError at once if HOOKLINE_SECRET_KEYS is missing or invalid."""
    cipher = record_cipher(settings.secret_keys)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, ApiServices]]:
        async with open_services(settings, cipher) as services:
            document.describe_channels(services.catalog)
            yield {"services": services}

    app = FastAPI(
        title="hookline",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    document = OpenApiDocument(app, settings.quotas)
    app.add_middleware(BodySizeLimit)
    install_error_handlers(app)
    install_allowed_methods(app)
    for routes in (
        webhooks,
        channels,
        deliveries,
        dead_letters,
        replays,
        notification_contact,
        health,
    ):
        app.include_router(routes.router)
    return app
