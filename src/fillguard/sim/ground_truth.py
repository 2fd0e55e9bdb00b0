"""``/_sim/`` endpoints: ground truth and control (no auth, not part of Alpaca's API).

``GET /_sim/ledger`` (every order, POST, PATCH and execution; timestamps always ``micro``),
``POST /_sim/reset``, ``GET|PUT /_sim/faults``, ``GET|PUT /_sim/prices/{symbol}``,
``POST /_sim/close_session``, ``POST /_sim/open_session`` and ``GET /_sim/events``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from fillguard.sim import wire
from fillguard.sim.faults import profile_from
from fillguard.sim.messages import (
    ApiRequest,
    ApiResponse,
    body_of,
    error_response,
    json_response,
    not_found_page,
)
from fillguard.sim.state import SimError
from fillguard.sim.validation import parse_decimal

if TYPE_CHECKING:
    from fillguard.sim.api import SimApi

__all__ = ["handle_ground_truth"]

_PRICES = re.compile(r"/_sim/prices/([^/]+)")


def handle_ground_truth(api: SimApi, req: ApiRequest, path: str) -> ApiResponse:
    """Answer one ``/_sim/`` request; bad input is a 422 naming what is wrong."""
    try:
        return _handle(api, req, path.rstrip("/"))
    except SimError as err:
        return error_response(err)
    except ValueError as err:
        return json_response(422, {"code": 40010001, "message": str(err)})


def _handle(api: SimApi, req: ApiRequest, path: str) -> ApiResponse:
    broker = api.broker
    if path == "/_sim/ledger" and req.method == "GET":
        return json_response(200, broker.ledger())
    if path == "/_sim/reset" and req.method == "POST":
        body = body_of(req.body)
        faults = (
            profile_from(body.get("faults"))
            if isinstance(body, dict) and body.get("faults")
            else None
        )
        broker.reset(faults)
        api.restart_rate_window()
        return json_response(200, {"reset": True, "faults": broker.faults.to_dict()})
    if path == "/_sim/faults":
        if req.method == "GET":
            return json_response(200, broker.faults.to_dict())
        if req.method in ("PUT", "POST"):
            body = body_of(req.body)
            if not isinstance(body, dict | str):
                raise ValueError("send a profile name or an object of knobs")
            broker.set_faults(profile_from(body))
            return json_response(200, broker.faults.to_dict())
    if path == "/_sim/close_session" and req.method == "POST":
        expired, done = broker.end_session()
        return json_response(200, {"expired": expired, "done_for_day": done})
    if path == "/_sim/open_session" and req.method == "POST":
        return json_response(200, {"resumed": broker.open_session()})
    m = _PRICES.fullmatch(path)
    if m:
        symbol = unquote(m.group(1)).upper()
        if req.method in ("PUT", "POST"):
            body = body_of(req.body)
            raw = body.get("price") if isinstance(body, dict) else body
            broker.set_price(symbol, parse_decimal(raw, "price"))
        return json_response(200, {"symbol": symbol, "price": wire.num(broker.price(symbol))})
    if path == "/_sim/events" and req.method == "GET":
        return json_response(200, [e.message() for e in broker.events])
    return not_found_page()
