"""Closing the tick connections a revoked credential opened, from any thread (the auth routes call it)."""

from __future__ import annotations

from typing import Any

from streams.ticks import TickHub

__all__ = ["REVOKED", "close_revoked"]

REVOKED = 4401  # the credential that opened the connection was revoked (the WebSocket analogue of 401)


def close_revoked(app: Any, credential: tuple[str, Any], reason: str) -> None:
    """Close the tick connections a revoked credential opened (agent key revoked or regenerated, session
    signed out): close code 4401 with `reason`. Safe to call from any thread; a no-op without a hub."""
    hub: TickHub | None = getattr(app.state, "tick_hub", None)
    if hub is not None:
        hub.revoke(credential, REVOKED, reason)
