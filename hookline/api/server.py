"""uvicorn, stopped by its owner rather than by signals it catches itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class OwnedServer(uvicorn.Server):
    """A uvicorn server whose owner decides when it stops (`should_exit = True`).

    uvicorn's own handlers would re-raise SIGTERM after a graceful shutdown, so the process
    would end by the signal instead of exiting 0, and an embedding program would lose Ctrl-C.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
