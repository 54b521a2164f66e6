"""Refuses request bodies over a size limit, whether declared (Content-Length) or streamed."""

from __future__ import annotations

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024


class BodyTooLargeError(HTTPException):
    """The body is over the limit; FastAPI answers it as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE, detail=f"request body is over {limit} bytes"
        )


class BodySizeLimit:
    """ASGI middleware: 413 for a Content-Length over `limit`, or once more is received."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._limit:
            too_large = BodyTooLargeError(self._limit)
            await JSONResponse({"detail": too_large.detail}, too_large.status_code)(
                scope, receive, send
            )
            return
        await self._app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._limit:
                # Raised where the route reads its body, so FastAPI answers it like any 4xx.
                raise BodyTooLargeError(self._limit)
            return message

        return receive_within_limit


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length before we get here
    return None
