"""The local Kafka and Redis: reused when they answer, else started with the repository's
`scripts/services`, and afterwards stopped only if the demo started them."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from hookline.errors import DemoError

HOST = "127.0.0.1"
PORTS = {"kafka": 9092, "redis": 6379}
KAFKA_BOOTSTRAP = f"{HOST}:{PORTS['kafka']}"
REDIS_URL = f"redis://{HOST}:{PORTS['redis']}/0"
SERVICES_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services"
"""Where `scripts/services` is in a clone of hookline (the package installed editable)."""


class LocalServices:
    """Starts whichever of Kafka and Redis does not answer; `release` stops only those."""

    def __init__(self, script: Path = SERVICES_SCRIPT) -> None:
        self._script = script
        self.started: list[str] = []

    async def ensure(self) -> None:
        """Start the services that do not answer on their local ports."""
        missing = [name for name, port in PORTS.items() if not await _answers(port)]
        if not missing:
            return
        if not os.access(self._script, os.X_OK):
            raise DemoError(
                f"{' and '.join(missing)} not running on {HOST}, and {self._script}, which "
                "starts them, is missing: start them yourself, or run the demo from a clone"
            )
        # Recorded before starting, so that an interrupted start is still undone.
        self.started = missing
        await self._run("up")

    async def release(self, keep: bool) -> None:
        """Stop what `ensure` started, unless `keep`."""
        if self.started and not keep:
            await self._run("down", *self.started)

    async def _run(self, *args: str) -> None:
        # The script reports its progress on stderr, which stays the user's terminal.
        process = await asyncio.create_subprocess_exec(self._script, *args)
        if await process.wait() != 0:
            raise DemoError(f"`{self._script} {' '.join(args)}` failed (its messages are above)")


async def _answers(port: int) -> bool:
    """Whether something accepts TCP connections on HOST:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout=2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
