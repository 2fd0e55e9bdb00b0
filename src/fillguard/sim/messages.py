"""The pure HTTP layer's values: a request, the answer to carry out, and JSON helpers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fillguard.sim.state import SimError

__all__ = [
    "JSON_HEADERS",
    "ApiRequest",
    "ApiResponse",
    "body_of",
    "body_too_large",
    "client_order_id_of",
    "error_response",
    "json_response",
    "not_found_page",
]

JSON_HEADERS = (("content-type", "application/json; charset=UTF-8"),)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request: method, path, query (all values per name), raw body, lower-case headers."""

    method: str
    path: str
    query: Mapping[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def arg(self, name: str) -> str | None:
        """The last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """What to answer, after ``delay`` seconds; ``fault="reset"`` drops the connection instead."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    fault: Literal["reset"] | None = None
    fault_name: str | None = None  # which knob fired, for logs and tests
    # > 0: send status and headers at once, then the body one byte every trickle_seconds.
    trickle_seconds: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def json_response(
    status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()
) -> ApiResponse:
    """A JSON answer, compact as Alpaca writes it."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return ApiResponse(status, body, JSON_HEADERS + headers)


def error_response(err: SimError) -> ApiResponse:
    """Alpaca's error body for ``err``, naming the fault knob that made it, if any."""
    return replace(json_response(err.status, err.body()), fault_name=err.fault)


def not_found_page() -> ApiResponse:
    """A path that is no route at all: 404 with Alpaca's JSON error body."""
    return json_response(404, {"code": 40410000, "message": "endpoint not found"})


def body_too_large(limit_bytes: int) -> ApiResponse:
    """413: the request body is over the simulator's cap (no Alpaca body comes near it)."""
    return json_response(
        413, {"code": 41310000, "message": f"request body larger than {limit_bytes} bytes"}
    )


def body_of(body: bytes) -> Any:
    """A body as JSON, or as text when it is not JSON (for the ledger)."""
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")


def client_order_id_of(body: bytes) -> str | None:
    """The string client_order_id of a JSON body, if it has one."""
    data = body_of(body)
    coid = data.get("client_order_id") if isinstance(data, dict) else None
    return coid if isinstance(coid, str) else None
