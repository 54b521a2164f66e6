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
    key = credentials.credentials if credentials else None
    organization = await services.api_keys.organization_of(key) if key else None
    if key is None or organization is None:
        # Wrong keys from one address are slowed down; a valid key from it never is, since
        # other organizations may share the address (a NAT, a proxy).
        client = request.client.host if request.client else "unknown"
        await services.throttle.check_client(client)
        if key is None:
            raise _unauthorized("an API key is required: 'Authorization: Bearer sk_...'")
        await services.throttle.failed_authentication(client)
        raise _unauthorized("the API key is not valid or has been revoked")
    await services.throttle.request(key)
    return organization


OrganizationId = Annotated[str, Depends(_organization)]
"""The `internal_id` of the organization whose API key authorized the call."""
