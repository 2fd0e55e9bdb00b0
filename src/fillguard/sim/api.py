"""Trading API v2 over the broker core, as a pure request -> response function.

:class:`SimApi` does routing, authentication, input validation, the rate limit and every
REST-level fault decision, and returns an :class:`ApiResponse` that says what to send and
how: after how long (``delay``) and whether to reset the connection instead (``fault``).
The HTTP server and the in-process transport are thin shells that carry out that answer,
so the same rules apply in fake time and over real sockets.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import unquote

from fillguard.sim import wire
from fillguard.sim.core import Broker, OrderRequest, SimError, asset_id_for
from fillguard.sim.faults import profile_from

__all__ = ["ApiRequest", "ApiResponse", "SimApi", "parse_order_request"]

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
_MAX_COID = 128
_JSON = (("content-type", "application/json; charset=UTF-8"),)
_5XX_BODIES: dict[int, tuple[bytes, str]] = {
    500: (b'{"code":50010000,"message":"internal server error occurred"}', "application/json"),
    502: (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    503: (b'{"code":50310000,"message":"service unavailable"}', "application/json"),
    504: (b"upstream request timeout", "text/plain"),
}


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

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def _json(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> ApiResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return ApiResponse(status, body, _JSON + headers)


def _error(err: SimError) -> ApiResponse:
    return _json(err.status, err.body())


def _invalid(message: str, code: int = 40010001) -> SimError:
    return SimError(422, code, message)


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise _invalid(f"invalid {name}")
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _invalid(f"invalid {name}") from None
    if not d.is_finite():
        raise _invalid(f"invalid {name}")
    return d


def parse_order_request(body: bytes) -> OrderRequest:
    """Validate a POST /v2/orders body, raising 422 :class:`SimError` with Alpaca's messages."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        raise _invalid("request body format is invalid", 40010000) from None
    if not isinstance(data, dict):
        raise _invalid("request body format is invalid", 40010000)
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise _invalid("symbol is required")
    symbol = symbol.upper()
    if not _SYMBOL.fullmatch(symbol):
        raise _invalid(f"could not find us_equity '{symbol}'")
    side = data.get("side")
    if side not in ("buy", "sell"):
        raise _invalid(f"invalid side: {side!r}" if side is not None else "side is required")
    order_type = data.get("type", data.get("order_type"))
    if order_type not in ("market", "limit"):
        if order_type in ("stop", "stop_limit", "trailing_stop"):
            raise _invalid(f"order type {order_type} is not supported by the simulator")
        raise _invalid(f"invalid order type: {order_type!r}" if order_type else "type is required")
    tif = data.get("time_in_force")
    if tif not in ("day", "gtc", "ioc", "fok"):
        raise _invalid(f"invalid time_in_force: {tif!r}" if tif else "time_in_force is required")
    order_class = data.get("order_class")
    if order_class not in (None, "", "simple"):
        raise _invalid(f"order_class {order_class} is not supported by the simulator")
    if data.get("notional") is not None:
        raise _invalid("notional orders are not supported by the simulator; use qty")
    if data.get("qty") is None:
        raise _invalid("qty or notional is required")
    qty = _decimal(data.get("qty"), "qty")
    if qty <= 0:
        raise _invalid("qty must be > 0")
    # Bound first: quantizing a huge qty (1e30) raises InvalidOperation, which was a 500.
    if qty > Decimal(10**9) or qty != qty.quantize(Decimal("0.000000001")):
        raise _invalid("qty must have at most 9 decimal places and be at most 1e9")
    if qty != qty.to_integral_value() and tif != "day":
        raise _invalid("fractional orders must be DAY orders")
    limit_price: Decimal | None = None
    if order_type == "limit":
        if data.get("limit_price") is None:
            raise _invalid("limit orders require a limit_price")
        limit_price = _decimal(data["limit_price"], "limit_price")
        if limit_price <= 0 or limit_price > Decimal(10**7):
            raise _invalid("limit_price must be > 0")
        quantum = Decimal("0.01") if limit_price >= 1 else Decimal("0.0001")
        if limit_price != limit_price.quantize(quantum):
            raise _invalid(
                f"invalid limit_price {limit_price}. sub-penny increment does not fulfill minimum pricing criteria"
            )
    elif data.get("limit_price") is not None or data.get("stop_price") is not None:
        raise _invalid("market orders require no stop or limit price")
    coid = data.get("client_order_id")
    if coid is not None and (not isinstance(coid, str) or not coid or len(coid) > _MAX_COID):
        raise _invalid(f"client_order_id must be a string of 1 to {_MAX_COID} characters")
    extended = data.get("extended_hours", False)
    if not isinstance(extended, bool):
        raise _invalid("extended_hours must be a boolean")
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=order_type,
        time_in_force=tif,
        qty=qty,
        limit_price=limit_price,
        client_order_id=coid,
        extended_hours=extended,
    )


def _parse_time(value: str, name: str) -> datetime:
    text = value.strip().replace(" ", "+")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"invalid {name}: {value}") from None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _bool(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise _invalid(f"invalid {name}: {value}")


class SimApi:
    """Alpaca's Trading API v2 (the parts fillguard needs) plus ``/_sim/`` ground truth."""

    def __init__(
        self,
        broker: Broker,
        *,
        key_id: str,
        secret_key: str,
        rate_limit: int | None = 200,
        rate_window_seconds: float = 60.0,
    ) -> None:
        self.broker = broker
        self.key_id = key_id
        self.secret_key = secret_key
        self.rate_limit = rate_limit
        self.rate_window_seconds = rate_window_seconds
        self._window_start = 0.0
        self._window_count = 0
        self._burst_left = 0
        self._stale_hit = False
        self._stale_used = False
        self.requests_total = 0
        # Built once: the route table is on every request's path.
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., ApiResponse]]] = [
            ("GET", re.compile(r"/v2/account"), self._account),
            ("GET", re.compile(r"/v2/clock"), self._clock),
            ("GET", re.compile(r"/v2/assets/([^/]+)"), self._asset),
            ("POST", re.compile(r"/v2/orders"), self._submit),
            ("GET", re.compile(r"/v2/orders"), self._list_orders),
            ("DELETE", re.compile(r"/v2/orders"), self._cancel_all),
            ("GET", re.compile(r"/v2/orders:by_client_order_id"), self._by_client_id),
            ("GET", re.compile(r"/v2/orders/([^/]+)"), self._get_order),
            ("DELETE", re.compile(r"/v2/orders/([^/]+)"), self._cancel),
            ("GET", re.compile(r"/v2/positions"), self._positions),
            ("DELETE", re.compile(r"/v2/positions"), self._close_all),
            ("GET", re.compile(r"/v2/positions/([^/]+)"), self._position),
            ("DELETE", re.compile(r"/v2/positions/([^/]+)"), self._close_position),
            ("GET", re.compile(r"/v2/account/activities/FILL"), self._fills),
            ("GET", re.compile(r"/v2/account/activities"), self._activities),
        ]

    # ------------------------------------------------------------------ entry point
    def handle(self, req: ApiRequest) -> ApiResponse:
        """Answer one request. Never raises for any input: a bug here is a 500 for the shell."""
        path = "/" + req.path.lstrip("/")
        if path.startswith("/_sim/") or path == "/_sim":
            return self._ground_truth(req, path)
        with self.broker.lock:
            self.requests_total += 1
            auth = self._authenticate(req)
            if auth is not None:
                return auth
            faults = self.broker.faults
            rng = self.broker.rng
            # Every knob that is on draws exactly once per request, whatever then happens to
            # the request, so switching one knob on never shifts which requests another hits.
            latency = (
                faults.latency.sample(rng.stream("latency"))
                if faults.latency.b or faults.latency.a
                else 0.0
            )
            hit = {
                name: rng.chance(name, rate)
                for name, rate in (
                    ("rate_limit_burst", faults.rate_limit_burst_rate),
                    ("reset", faults.reset_rate),
                    ("http_error", faults.http_error_rate),
                    ("hang", faults.hang_rate),
                    ("stale_read", faults.stale_read_rate),
                    ("lost_submit", faults.lost_submit_rate),
                )
            }
            error_status = (
                rng.stream("http_error_status").choice(sorted(_5XX_BODIES))
                if hit["http_error"]
                else 500
            )
            lost_mode = (
                rng.stream("lost_submit_mode").choice(faults.lost_submit_modes)
                if hit["lost_submit"]
                else None
            )
            limit_headers, limited = self._rate_limit(hit["rate_limit_burst"])
            if limited is not None:
                return limited
            if hit["reset"]:
                self._record_unapplied_post(req, "fault:reset")
                return ApiResponse(0, delay=latency, fault="reset", fault_name="reset")
            if hit["http_error"]:
                body, ctype = _5XX_BODIES[error_status]
                self._record_unapplied_post(req, f"fault:{error_status}")
                return ApiResponse(
                    error_status,
                    body,
                    (("content-type", ctype), *limit_headers),
                    delay=latency,
                    fault_name="http_error",
                )
            if hit["hang"]:
                # No answer within any sane client timeout; nothing is applied.
                self._record_unapplied_post(req, "fault:hang")
                return ApiResponse(
                    504,
                    _5XX_BODIES[504][0],
                    (("content-type", "text/plain"),),
                    delay=faults.hang_seconds,
                    fault_name="hang",
                )
            self._stale_hit = hit["stale_read"]
            self._stale_used = False
            try:
                response = self._route(req, path)
            finally:
                self._stale_hit = False
            if self._stale_used and response.fault_name is None:
                response = replace(response, fault_name="stale_read")
            response = self._maybe_lose_submit(req, path, response, lost_mode)
            return ApiResponse(
                response.status,
                response.body,
                response.headers + limit_headers,
                delay=response.delay + latency,
                fault=response.fault,
                fault_name=response.fault_name,
            )

    # ------------------------------------------------------------------ cross-cutting
    def _authenticate(self, req: ApiRequest) -> ApiResponse | None:
        key = req.headers.get("apca-api-key-id")
        secret = req.headers.get("apca-api-secret-key")
        if not key or not secret or key != self.key_id:
            return _json(401, {"code": 40110000, "message": "request is not authorized"})
        if secret != self.secret_key:
            return _json(
                403, {"code": 40310000, "message": "forbidden: access key verification failed"}
            )
        return None

    def _rate_limit(self, burst: bool) -> tuple[tuple[tuple[str, str], ...], ApiResponse | None]:
        t = self.broker.t()
        faults = self.broker.faults
        if faults.rate_limit_burst_rate <= 0:
            self._burst_left = 0  # the knob was switched off: a burst under way ends with it
        if self._burst_left > 0 or burst:
            if self._burst_left > 0:
                self._burst_left -= 1
            else:
                self._burst_left = faults.rate_limit_burst_length - 1
            limited = _json(429, {"code": 42910000, "message": "rate limit exceeded"})
            return (), replace(limited, fault_name="rate_limit_burst")
        if self.rate_limit is None:
            return (), None
        if t < self._window_start:
            # The broker was reset: its clock restarted at 0, so the window restarts too.
            self._window_start = 0.0
            self._window_count = 0
        if t - self._window_start >= self.rate_window_seconds:
            self._window_start = t - ((t - self._window_start) % self.rate_window_seconds)
            self._window_count = 0
        self._window_count += 1
        reset_in = self._window_start + self.rate_window_seconds - t
        reset_epoch = math.ceil(self.broker.clock.now().timestamp() + reset_in)
        remaining = max(0, self.rate_limit - self._window_count)
        headers = (
            ("x-ratelimit-limit", str(self.rate_limit)),
            ("x-ratelimit-remaining", str(remaining)),
            ("x-ratelimit-reset", str(reset_epoch)),
        )
        if self._window_count > self.rate_limit:
            return headers, _json(
                429, {"code": 42910000, "message": "rate limit exceeded"}, headers
            )
        return headers, None

    def _record_unapplied_post(self, req: ApiRequest, outcome: str) -> None:
        if req.method == "POST" and req.path.rstrip("/").endswith("/v2/orders"):
            self.broker.record_post(_coid_of(req.body), _body_of(req.body), outcome)

    def _maybe_lose_submit(
        self, req: ApiRequest, path: str, resp: ApiResponse, mode: str | None
    ) -> ApiResponse:
        if mode is None:
            return resp
        if not (req.method == "POST" and path.rstrip("/") == "/v2/orders" and resp.status == 200):
            return resp
        faults = self.broker.faults
        # The applied order's own client_order_id (minted when the body had none).
        coid = _coid_of(resp.body)
        posts = self.broker.posts.get(coid, []) if coid else []
        if posts:
            posts[-1]["outcome"] = f"applied, response lost ({mode})"
        if mode == "reset":
            return ApiResponse(0, fault="reset", fault_name="lost_submit")
        if mode == "hang":
            return ApiResponse(
                504,
                _5XX_BODIES[504][0],
                (("content-type", "text/plain"),),
                delay=faults.hang_seconds,
                fault_name="lost_submit",
            )
        return ApiResponse(
            504, _5XX_BODIES[504][0], (("content-type", "text/plain"),), fault_name="lost_submit"
        )

    # ------------------------------------------------------------------ routing
    def _route(self, req: ApiRequest, path: str) -> ApiResponse:
        path = path.rstrip("/") or "/"
        matched_path = False
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            matched_path = True
            if method != req.method:
                continue
            try:
                return handler(req, *(unquote(g) for g in m.groups()))
            except SimError as err:
                return _error(err)
        if matched_path:
            return _json(405, {"code": 40510000, "message": "method not allowed"})
        return ApiResponse(404, b"404 page not found", (("content-type", "text/plain"),))

    def _account(self, req: ApiRequest) -> ApiResponse:
        return _json(200, self.broker.account_view())

    def _clock(self, req: ApiRequest) -> ApiResponse:
        return _json(200, wire.clock_json(self.broker.clock.now()))

    def _asset(self, req: ApiRequest, symbol: str) -> ApiResponse:
        if not _SYMBOL.fullmatch(symbol):
            raise SimError(404, 40410000, f"asset not found for {symbol}")
        return _json(200, wire.asset_json(symbol, asset_id_for(symbol)))

    def _submit(self, req: ApiRequest) -> ApiResponse:
        coid = _coid_of(req.body)
        try:
            order_req = parse_order_request(req.body)
            order = self.broker.submit(order_req)
        except SimError as err:
            outcome = (
                "duplicate"
                if err.message == "client_order_id must be unique"
                else f"refused:{err.status}"
            )
            self.broker.record_post(coid, _body_of(req.body), outcome)
            raise
        self.broker.record_post(order.client_order_id, _body_of(req.body), "accepted")
        return _json(200, self.broker.order_view(order))

    def _list_orders(self, req: ApiRequest) -> ApiResponse:
        status = req.arg("status") or "open"
        if status not in ("open", "closed", "all"):
            raise _invalid(f"invalid status: {status}")
        limit_s = req.arg("limit") or "50"
        try:
            limit = int(limit_s)
        except ValueError:
            raise _invalid(f"invalid limit: {limit_s}") from None
        if not 1 <= limit <= 500:
            raise _invalid("limit must be between 1 and 500")
        direction = (req.arg("direction") or "desc").lower()
        if direction not in ("asc", "desc"):
            raise _invalid(f"invalid direction: {direction}")
        after = _parse_time(a, "after") if (a := req.arg("after")) else None
        until = _parse_time(u, "until") if (u := req.arg("until")) else None
        _bool(req.arg("nested"), "nested")
        symbols = {s.strip().upper() for s in (req.arg("symbols") or "").split(",") if s.strip()}
        side = req.arg("side")
        orders = []
        for order in self.broker.list_orders():
            is_open = order.is_open
            if (status == "open" and not is_open) or (status == "closed" and is_open):
                continue
            if symbols and order.symbol not in symbols:
                continue
            if side and order.side != side:
                continue
            if after and not order.created_at > after:
                continue
            if until and not order.created_at < until:
                continue
            orders.append(order)
        orders.sort(key=lambda o: (o.created_at, o.created_mono), reverse=direction == "desc")
        return _json(200, [self.broker.order_view(o) for o in orders[:limit]])

    def _cancel_all(self, req: ApiRequest) -> ApiResponse:
        results = self.broker.cancel_all()
        return _json(207, [{"id": oid, "status": code, "body": None} for oid, code in results])

    def _stale(self) -> bool:
        # Drawn once per request in handle(); a read that uses it is marked stale_read.
        if self._stale_hit:
            self._stale_used = True
        return self._stale_hit

    def _by_client_id(self, req: ApiRequest) -> ApiResponse:
        coid = req.arg("client_order_id")
        if not coid:
            raise _invalid("client_order_id is required")
        return _json(200, self.broker.get_order_by_client_id(coid, stale=self._stale()))

    def _get_order(self, req: ApiRequest, order_id: str) -> ApiResponse:
        _bool(req.arg("nested"), "nested")
        return _json(200, self.broker.get_order(order_id, stale=self._stale()))

    def _cancel(self, req: ApiRequest, order_id: str) -> ApiResponse:
        self.broker.cancel(order_id)
        return ApiResponse(204)

    def _positions(self, req: ApiRequest) -> ApiResponse:
        return _json(
            200, [wire.position_json(p, price) for p, price in self.broker.position_rows()]
        )

    def _position(self, req: ApiRequest, symbol: str) -> ApiResponse:
        for position, price in self.broker.position_rows():
            if position.symbol == symbol.upper() or position.asset_id == symbol:
                return _json(200, wire.position_json(position, price))
        raise SimError(404, 40410000, "position does not exist")

    def _close_position(self, req: ApiRequest, symbol: str) -> ApiResponse:
        return _json(200, self._close(symbol.upper(), req.arg("qty"), req.arg("percentage")))

    def _close(self, symbol: str, qty_s: str | None, pct_s: str | None) -> dict[str, Any]:
        position = self.broker.positions.get(symbol)
        if position is None or position.qty == 0:
            raise SimError(404, 40410000, "position does not exist")
        held = abs(position.qty)
        if qty_s is not None and pct_s is not None:
            raise _invalid("only one of qty or percentage may be given")
        if qty_s is not None:
            qty = _decimal(qty_s, "qty")
            # As on submit, at most 9 decimals: qty=1e-99999 made a 100 KB number in the
            # order's JSON (1e-999999999 a gigabyte).
            if 0 < qty <= held and qty != qty.quantize(Decimal("0.000000001")):
                raise _invalid("qty must have at most 9 decimal places")
        elif pct_s is not None:
            pct = _decimal(pct_s, "percentage")
            if not 0 < pct <= 100:
                raise _invalid("percentage must be in (0, 100]")
            qty = (held * pct / 100).quantize(Decimal("0.000000001"))
        else:
            qty = held
        if qty <= 0 or qty > held:
            raise SimError(
                403,
                40310000,
                f"insufficient qty available for order (requested: {qty}, available: {held})",
            )
        side = "sell" if position.qty > 0 else "buy"
        order = self.broker.submit(
            OrderRequest(
                symbol=symbol,
                side=side,
                type="market",
                time_in_force="day",
                qty=qty,
            )
        )
        return self.broker.order_view(order)

    def _close_all(self, req: ApiRequest) -> ApiResponse:
        if _bool(req.arg("cancel_orders"), "cancel_orders"):
            self.broker.cancel_all()
        out = []
        for symbol in sorted(self.broker.positions):
            try:
                body = self._close(symbol, None, None)
                out.append({"symbol": symbol, "status": 200, "body": body, "order_id": body["id"]})
            except SimError as err:
                if err.status != 404:
                    out.append({"symbol": symbol, "status": err.status, "body": err.body()})
        return _json(207, out)

    def _fills(self, req: ApiRequest) -> ApiResponse:
        rows = [wire.execution_json(e) for e in self.broker.executions]
        direction = (req.arg("direction") or "desc").lower()
        if direction == "desc":
            rows.reverse()
        size = req.arg("page_size")
        if size is not None:
            try:
                rows = rows[: max(1, min(100, int(size)))]
            except ValueError:
                raise _invalid(f"invalid page_size: {size}") from None
        return _json(200, rows)

    def _activities(self, req: ApiRequest) -> ApiResponse:
        types = (req.arg("activity_types") or "FILL").upper().split(",")
        if types != ["FILL"]:
            return _json(200, [])
        return self._fills(req)

    # ------------------------------------------------------------------ ground truth
    def _ground_truth(self, req: ApiRequest, path: str) -> ApiResponse:
        try:
            return self._ground_truth_inner(req, path.rstrip("/"))
        except SimError as err:
            return _error(err)
        except ValueError as err:
            return _json(422, {"code": 40010001, "message": str(err)})

    def _ground_truth_inner(self, req: ApiRequest, path: str) -> ApiResponse:
        broker = self.broker
        if path == "/_sim/ledger" and req.method == "GET":
            return _json(200, broker.ledger())
        if path == "/_sim/reset" and req.method == "POST":
            body = _body_of(req.body)
            faults = (
                profile_from(body.get("faults"))
                if isinstance(body, dict) and body.get("faults")
                else None
            )
            broker.reset(faults)
            self._window_count = 0
            self._burst_left = 0
            return _json(200, {"reset": True, "faults": broker.faults.to_dict()})
        if path == "/_sim/faults":
            if req.method == "GET":
                return _json(200, broker.faults.to_dict())
            if req.method in ("PUT", "POST"):
                body = _body_of(req.body)
                if not isinstance(body, dict | str):
                    raise ValueError("send a profile name or an object of knobs")
                broker.set_faults(profile_from(body))
                return _json(200, broker.faults.to_dict())
        if path == "/_sim/close_session" and req.method == "POST":
            return _json(200, {"expired": broker.close_session()})
        m = re.fullmatch(r"/_sim/prices/([^/]+)", path)
        if m:
            symbol = unquote(m.group(1)).upper()
            if req.method in ("PUT", "POST"):
                body = _body_of(req.body)
                raw = body.get("price") if isinstance(body, dict) else body
                broker.set_price(symbol, _decimal(raw, "price"))
            return _json(200, {"symbol": symbol, "price": wire.num(broker.price(symbol))})
        if path == "/_sim/events" and req.method == "GET":
            return _json(200, [e.message() for e in broker.events])
        return ApiResponse(404, b"404 page not found", (("content-type", "text/plain"),))


def _body_of(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")


def _coid_of(body: bytes) -> str | None:
    data = _body_of(body)
    coid = data.get("client_order_id") if isinstance(data, dict) else None
    return coid if isinstance(coid, str) else None
