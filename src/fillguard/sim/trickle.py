"""A response body sent one byte at a time (the trickle fault), over real sockets.

The server sends the status and headers at once, then one byte every ``seconds``: each byte
arrives within any per-read timeout, so only a deadline on the whole request ends the wait.
When the client goes away the ASGI server cancels the body and it stops quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fillguard.sim.api import TrickleStats

__all__ = ["trickle_body"]


async def trickle_body(body: bytes, seconds: float, stats: TrickleStats) -> AsyncIterator[bytes]:
    """Yield ``body`` byte by byte, each after ``seconds``; count it in ``stats``."""
    stats.started += 1
    stats.active += 1
    complete = False
    try:
        for i in range(len(body)):
            await asyncio.sleep(seconds)
            yield body[i : i + 1]
        complete = True
    finally:
        # Cancelled (the client closed) or closed early: either way this body is done.
        stats.active -= 1
        if complete:
            stats.finished += 1
        else:
            stats.abandoned += 1
