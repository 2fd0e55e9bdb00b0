"""What the trade_updates client reports about itself: its state and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from fillguard.stream_policy import FailureKind

__all__ = ["StreamState", "StreamStats", "StreamStatus"]


class StreamState(StrEnum):
    """Where the client is. ``AUTH_FAILED`` and ``REFUSED`` wait for a slow retry."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LISTENING = "listening"
    WAITING = "waiting"  # backoff before a reconnect
    AUTH_FAILED = "auth_failed"
    REFUSED = "refused"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A state change: the new state, the failure that led to it and when it retries."""

    state: StreamState
    reason: FailureKind | None = None
    detail: str | None = None
    retry_in_seconds: float | None = None


@dataclass(slots=True)
class StreamStats:
    """Counters since the stream was created (``TradeUpdatesStream.stats()`` gives a copy)."""

    connect_attempts: int = 0
    connections: int = 0  # attempts that reached listening
    frames: int = 0
    events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    skipped_by_kind: dict[str, int] = field(default_factory=dict)
    control_frames: int = 0
    reconnects: int = 0
    auth_failures: int = 0
    refused: int = 0
    silences: int = 0
    gaps: int = 0
    callback_errors: int = 0

    def copy(self) -> StreamStats:
        """An independent copy (the dicts too)."""
        return replace(
            self,
            events_by_type=dict(self.events_by_type),
            skipped_by_kind=dict(self.skipped_by_kind),
        )

    @property
    def malformed(self) -> int:
        """Frames that were not JSON objects of a known shape, or events without an order."""
        return self.skipped_by_kind.get("malformed", 0) + self.skipped_by_kind.get("no_order", 0)

    @property
    def null(self) -> int:
        """trade_updates frames with ``data: null``."""
        return self.skipped_by_kind.get("null", 0)

    @property
    def unknown(self) -> int:
        """Events of a type not in :data:`fillguard.stream_parse.KNOWN_EVENTS`."""
        return self.skipped_by_kind.get("unknown", 0)
