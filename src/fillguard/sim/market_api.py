"""REST handlers for the market and the account around orders: clock, calendar, assets,
account configurations and account activities (FILL with Alpaca's filters and paging).

Each handler takes the :class:`~fillguard.sim.api.SimApi` and the request (plus the path's
groups) and returns an :class:`ApiResponse`; :class:`SimApi` routes to them.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from fillguard.sim import wire
from fillguard.sim.market_clock import NEW_YORK, calendar
from fillguard.sim.messages import ApiRequest, ApiResponse, json_response
from fillguard.sim.orders import Execution
from fillguard.sim.state import ACCOUNT_CONFIG_DEFAULTS, SimError
from fillguard.sim.validation import _body, invalid, parse_time

if TYPE_CHECKING:
    from fillguard.sim.api import SimApi

__all__ = [
    "ACTIVITY_TYPES",
    "account_configurations",
    "activities_of_type",
    "asset",
    "assets",
    "clock",
    "fill_activities",
    "market_calendar",
    "patch_account_configurations",
]

# Alpaca's non-trade (and trade) activity types: all but FILL answer [] here.
ACTIVITY_TYPES = frozenset(
    [
        "FILL",
        "TRANS",
        "MISC",
        "ACATC",
        "ACATS",
        "CFEE",
        "CSD",
        "CSW",
        "DIV",
        "DIVCGL",
        "DIVCGS",
        "DIVFEE",
        "DIVFT",
        "DIVNRA",
        "DIVROC",
        "DIVTW",
        "DIVTXEX",
        "FEE",
        "INT",
        "INTNRA",
        "INTTW",
        "JNL",
        "JNLC",
        "JNLS",
        "MA",
        "NC",
        "OPASN",
        "OPEXP",
        "OPXRC",
        "PTC",
        "PTR",
        "REORG",
        "SC",
        "SSO",
        "SSP",
        "CFEE",
    ]
)
_CALENDAR_MAX_DAYS = 3660
_PAGE_SIZE_MAX = 100
# Settable keys and the values each takes (None: any boolean).
_CONFIG_CHOICES: dict[str, tuple[object, ...] | None] = {
    "dtbp_check": ("both", "entry", "exit"),
    "trade_confirm_email": ("all", "none"),
    "pdt_check": ("both", "entry", "exit"),
    "max_margin_multiplier": ("1", "2", "4"),
    "suspend_trade": None,
    "no_shorting": None,
    "fractional_trading": None,
    "ptp_no_exception_entry": None,
}


def clock(api: SimApi, req: ApiRequest) -> ApiResponse:
    """GET /v2/clock: New York time; always open unless the broker plays market hours."""
    broker = api.broker
    body = wire.clock_json(broker.clock.now(), always_open=not broker.config.market_hours)
    return json_response(200, body)


def _date(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise invalid(f"invalid {name}: {value}") from None


def market_calendar(api: SimApi, req: ApiRequest) -> ApiResponse:
    """GET /v2/calendar?start=&end=: trading days (default: today and the next 30 days)."""
    today = api.broker.clock.now().astimezone(NEW_YORK).date()
    start = _date(req.arg("start"), "start", today)
    end = _date(req.arg("end"), "end", start + timedelta(days=30))
    if end < start:
        return json_response(200, [])
    if (end - start).days > _CALENDAR_MAX_DAYS:
        raise invalid(f"the range may span at most {_CALENDAR_MAX_DAYS} days")
    rows = [
        {
            "date": day.day.isoformat(),
            "open": day.open.strftime("%H:%M"),
            "close": day.close.strftime("%H:%M"),
            "session_open": day.pre_open.strftime("%H%M"),
            "session_close": day.post_close.strftime("%H%M"),
            "settlement_date": day.settlement_date().isoformat(),
        }
        for day in calendar(start, end)
    ]
    return json_response(200, rows)


def assets(api: SimApi, req: ApiRequest) -> ApiResponse:
    """GET /v2/assets?status=&asset_class=: the universe."""
    status = req.arg("status")
    asset_class = req.arg("asset_class")
    rows = [
        wire.asset_json(a)
        for a in api.broker.config.assets.assets
        if (status in (None, "", "active"))
        and (asset_class in (None, "") or a.asset_class == asset_class)
    ]
    return json_response(200, rows)


def asset(api: SimApi, req: ApiRequest, symbol: str) -> ApiResponse:
    """GET /v2/assets/{symbol_or_asset_id} (``BTC/USD``, ``BTC%2FUSD`` and ``BTCUSD`` alike)."""
    found = api.broker.config.assets.find(symbol)
    if found is None:
        raise SimError(404, 40410000, f"asset not found for {symbol}")
    return json_response(200, wire.asset_json(found))


def account_configurations(api: SimApi, req: ApiRequest) -> ApiResponse:
    """GET /v2/account/configurations."""
    return json_response(200, dict(api.broker.account_config))


def patch_account_configurations(api: SimApi, req: ApiRequest) -> ApiResponse:
    """PATCH /v2/account/configurations: change known keys (422 names a bad key or value)."""
    data = _body(req.body)
    config = dict(api.broker.account_config)
    for key, value in data.items():
        if key not in ACCOUNT_CONFIG_DEFAULTS:
            raise invalid(f"unknown account configuration: {key}")
        choices = _CONFIG_CHOICES.get(key, ())
        if choices is None:
            if not isinstance(value, bool):
                raise invalid(f"{key} must be a boolean")
        elif value not in choices:
            raise invalid(f"invalid {key}: {json.dumps(value)}")
        config[key] = value
    api.broker.account_config = config
    return json_response(200, config)


def activities_of_type(api: SimApi, req: ApiRequest, activity_type: str) -> ApiResponse:
    """GET /v2/account/activities/{type}: FILL as it happened, every other known type []."""
    kind = activity_type.upper()
    if kind == "FILL":
        return fill_activities(api, req)
    if kind not in ACTIVITY_TYPES:
        raise invalid(f"invalid activity type: {activity_type}")
    return json_response(200, [])


def _activity_id(e: Execution) -> str:
    return str(wire.execution_json(e)["id"])


def fill_activities(api: SimApi, req: ApiRequest) -> ApiResponse:
    """FILL activities with ``after``, ``until``, ``date`` (New York), ``order_id``,
    ``direction`` (default desc), ``page_size`` (default and max 100) and ``page_token``
    (the id of the last activity of the page before)."""
    direction = (req.arg("direction") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise invalid(f"invalid direction: {direction}")
    size_s = req.arg("page_size")
    try:
        size = int(size_s) if size_s else _PAGE_SIZE_MAX
    except ValueError:
        raise invalid(f"invalid page_size: {size_s}") from None
    size = max(1, min(_PAGE_SIZE_MAX, size))
    after = parse_time(a, "after") if (a := req.arg("after")) else None
    until = parse_time(u, "until") if (u := req.arg("until")) else None
    day = _date(req.arg("date"), "date", date.min) if req.arg("date") else None
    order_id = req.arg("order_id")
    rows: list[Execution] = []
    for e in api.broker.fill_executions():
        if after is not None and not e.timestamp > after:
            continue
        if until is not None and not e.timestamp < until:
            continue
        if day is not None and e.timestamp.astimezone(NEW_YORK).date() != day:
            continue
        if order_id and e.order_id != order_id:
            continue
        rows.append(e)
    if direction == "desc":
        rows.reverse()
    token = req.arg("page_token")
    if token:
        ids = [_activity_id(e) for e in rows]
        if token not in ids:
            raise invalid(f"invalid page_token: {token}")
        rows = rows[ids.index(token) + 1 :]
    out: list[dict[str, Any]] = [wire.execution_json(e) for e in rows[:size]]
    return json_response(200, out)
