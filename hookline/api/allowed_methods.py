"""A 405 answer's `Allow` header names every method of the path, as the OpenAPI document does.

Starlette answers a method a route does not take with that one route's methods, though other
routes of the same path (`GET` and `POST` of the webhook list) take more.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


async def _with_every_allowed_method(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = [method for method in _METHODS if _routed(request, method)]
        exc = HTTPException(exc.status_code, exc.detail, {"Allow": ", ".join(allowed)})
    return await http_exception_handler(request, exc)


def _routed(request: Request, method: str) -> bool:
    scope = {**request.scope, "method": method}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


def install_allowed_methods(app: FastAPI) -> None:
    """Answer a method the path does not take with 405 and all the methods it does take."""
    app.exception_handler(HTTPException)(_with_every_allowed_method)
