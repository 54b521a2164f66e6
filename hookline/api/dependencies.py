"""Route dependencies: the services opened by the lifespan, and the caller's organization."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hookline.api.services import ApiServices

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key of the organization: `Authorization: Bearer sk_...`.",
)


def _services(request: Request) -> ApiServices:
    return cast(ApiServices, request.state.services)


Services = Annotated[ApiServices, Depends(_services)]


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def _organization(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    services: Services,
) -> str:
    # A client that keeps presenting wrong keys is refused before its key is even looked at.
    client = request.client.host if request.client else "unknown"
    await services.throttle.check_client(client)
    if credentials is None:
        raise _unauthorized("an API key is required: 'Authorization: Bearer sk_...'")
    organization = await services.api_keys.organization_of(credentials.credentials)
    if organization is None:
        await services.throttle.failed_authentication(client)
        raise _unauthorized("the API key is not valid or has been revoked")
    await services.throttle.request(credentials.credentials)
    return organization


OrganizationId = Annotated[str, Depends(_organization)]
"""The `internal_id` of the organization whose API key authorized the call."""
