"""Structured logging through stdlib ``logging``.

Every fillguard event is one log record under a ``fillguard.*`` logger whose message is the
event name and whose ``extra`` carries ``fg_event`` (the name) and ``fg_fields`` (a dict of
plain values). :class:`JsonFormatter` renders one JSON object per line. Secrets never reach a
record: :func:`redact` masks known secret values and secret-looking field names.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

__all__ = [
    "JsonFormatter",
    "event_fields",
    "event_name",
    "log_context",
    "log_event",
    "redact",
    "register_secret",
]

_SECRET_KEYS = re.compile(r"(secret|password|token|api_key|key_id|authorization)", re.I)
_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fillguard_log_context", default=None
)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every event logged inside the block (this thread or task only).

    An event's own value wins, unless it is None: then the context's value fills it in.
    """
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def _forms(value: str) -> set[str]:
    """Every spelling in which ``value`` can reach a text: as is, stripped, and escaped.

    A secret read from a file keeps its newline; error messages show values repr- or
    JSON-escaped (``'SECRET\\n'``), URLs percent-encoded.
    """
    forms = {value, value.strip()}
    for form in list(forms):
        forms.add(repr(form)[1:-1])
        forms.add(json.dumps(form)[1:-1])
        forms.add(form.encode("unicode_escape").decode("ascii"))
        forms.add(urllib.parse.quote(form, safe=""))
    return {form for form in forms if len(form) >= 4}


def register_secret(value: str | None) -> None:
    """Remember a secret (an API key or secret) so that no log line ever shows it, in any form."""
    if value and len(value.strip()) >= 4:
        with _secrets_lock:
            _secrets.update(_forms(value))


def redact(text: str) -> str:
    """Mask every registered secret inside ``text``."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _plain(value: Any) -> Any:
    """Turn a field value into something JSON can carry, without losing Decimal precision."""
    if value is None or isinstance(value, bool | int | float | str):
        return redact(value) if isinstance(value, str) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        return [_plain(v) for v in value]
    return redact(str(value))


def _clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if _SECRET_KEYS.search(key) and value is not None:
            out[key] = "***"
        else:
            out[key] = _plain(value)
    return out


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields`` as structured data (plain, JSON-safe, redacted)."""
    if not logger.isEnabledFor(level):
        return
    context = _context.get()
    if context:
        fields = dict(fields)
        for key, value in context.items():
            if fields.get(key) is None:
                fields[key] = value
    clean = _clean_fields(fields)
    summary = " ".join(f"{k}={v}" for k, v in clean.items() if v is not None)
    logger.log(
        level,
        "%s %s",
        event,
        summary,
        extra={"fg_event": event, "fg_fields": clean},
    )


def event_name(record: logging.LogRecord) -> str | None:
    """The fillguard event name of a record, or None for other records."""
    name = getattr(record, "fg_event", None)
    return name if isinstance(name, str) else None


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a fillguard record (empty for other records)."""
    fields = getattr(record, "fg_fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": event_name(record) or "log",
            "message": redact(record.getMessage()),
        }
        for key, value in event_fields(record).items():
            payload.setdefault(key, value)
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str, separators=(",", ":"))
