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
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import unquote

from fillguard.sim import market_api, wire
from fillguard.sim.control import refuse_control
from fillguard.sim.core import (
    Broker,
    DuplicateClientOrderIdError,
    OrderRequest,
    SimError,
)
from fillguard.sim.ground_truth import handle_ground_truth
from fillguard.sim.messages import (
    ApiRequest,
    ApiResponse,
    body_of,
    body_too_large,
    client_order_id_of,
    error_response,
    json_response,
    not_found_page,
)
from fillguard.sim.order_body import parse_order_request
from fillguard.sim.queries import select_orders
from fillguard.sim.validation import (
    invalid,
    parse_bool,
    parse_decimal,
    parse_replace_request,
)

__all__ = ["ApiRequest", "ApiResponse", "SimApi", "TrickleStats", "parse_order_request"]

_5XX_BODIES: dict[int, tuple[bytes, str]] = {
    500: (b'{"code":50010000,"message":"internal server error occurred"}', "application/json"),
    502: (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    503: (b'{"code":50310000,"message":"service unavailable"}', "application/json"),
    504: (b"upstream request timeout", "text/plain"),
}


# Which read fault names an answer when several shaped it (the first wins).
_READ_FAULT_ORDER = ("lookup_refused", "not_found_lag", "stale_read", "half_update")


@dataclass
class TrickleStats:
    """Trickled bodies the HTTP server is sending or has sent (for tests and the benchmark)."""

    started: int = 0
    active: int = 0
    finished: int = 0  # the whole body went out
    abandoned: int = 0  # the client went away first


_ORDER_PATH = re.compile(r"/v2/orders/([^/]+)$")


def _restyled(response: ApiResponse, style: str) -> ApiResponse:
    """The response with every timestamp in its JSON body written in ``style``."""
    if not dict(response.headers).get("content-type", "").startswith("application/json"):
        return response
    if not 200 <= response.status < 300:
        return response  # error bodies carry no timestamps
    payload = wire.restyle(json.loads(response.body), style)
    return replace(response, body=json.dumps(payload, separators=(",", ":")).encode())


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
        control_token: str | None = None,
        max_body_bytes: int = 1 << 20,
    ) -> None:
        self.broker = broker
        # Required on /_sim/ calls when set (the HTTP server sets it); see fillguard.sim.control.
        self.control_token = control_token
        self.max_body_bytes = max_body_bytes
        self.key_id = key_id
        self.secret_key = secret_key
        self.rate_limit = rate_limit
        self.rate_window_seconds = rate_window_seconds
        self._window_start = 0.0
        self._window_count = 0
        self._burst_left = 0
        self._stale_hit = False
        self._stale_used = False
        self._duplicate_variant = False
        self._duplicate_as_funds = False
        self.requests_total = 0
        #: Requests answered 429 because the rate-limit window was spent (the real limit),
        #: and 429s the ``rate_limit_burst`` fault injected (another user of the account).
        self.rate_limited_total = 0
        self.burst_429s_total = 0
        self.trickles = TrickleStats()
        # Built once: the route table is on every request's path.
        configurations = re.compile(r"/v2/account/configurations")
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., ApiResponse]]] = [
            ("GET", re.compile(r"/v2/account"), self._account),
            ("GET", configurations, partial(market_api.account_configurations, self)),
            ("PATCH", configurations, partial(market_api.patch_account_configurations, self)),
            ("GET", re.compile(r"/v2/clock"), partial(market_api.clock, self)),
            ("GET", re.compile(r"/v2/calendar"), partial(market_api.market_calendar, self)),
            ("GET", re.compile(r"/v2/assets"), partial(market_api.assets, self)),
            ("GET", re.compile(r"/v2/assets/([^/]+|[^/]+/[^/]+)"), partial(market_api.asset, self)),
            ("POST", re.compile(r"/v2/orders"), self._submit),
            ("GET", re.compile(r"/v2/orders"), self._list_orders),
            ("DELETE", re.compile(r"/v2/orders"), self._cancel_all),
            ("GET", re.compile(r"/v2/orders:by_client_order_id"), self._by_client_id),
            ("GET", re.compile(r"/v2/orders/([^/]+)"), self._get_order),
            ("DELETE", re.compile(r"/v2/orders/([^/]+)"), self._cancel),
            ("PATCH", re.compile(r"/v2/orders/([^/]+)"), self._replace),
            ("GET", re.compile(r"/v2/positions"), self._positions),
            ("DELETE", re.compile(r"/v2/positions"), self._close_all),
            ("GET", re.compile(r"/v2/positions/([^/]+)"), self._position),
            ("DELETE", re.compile(r"/v2/positions/([^/]+)"), self._close_position),
            (
                "GET",
                re.compile(r"/v2/account/activities/([^/]+)"),
                partial(market_api.activities_of_type, self),
            ),
            ("GET", re.compile(r"/v2/account/activities"), self._activities),
        ]

    # ------------------------------------------------------------------ entry point
    def handle(self, req: ApiRequest) -> ApiResponse:
        """Answer one request. Never raises for any input: a bug here is a 500 for the shell."""
        path = "/" + req.path.lstrip("/")
        if len(req.body) > self.max_body_bytes:
            return body_too_large(self.max_body_bytes)
        if path.startswith("/_sim/") or path == "/_sim":
            refused = refuse_control(req, self.control_token)
            return refused or handle_ground_truth(self, req, path)
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
                    ("duplicate_message_variant", faults.duplicate_message_variant_rate),
                    ("duplicate_refused_as_funds", faults.duplicate_refused_as_funds_rate),
                    ("trickle", faults.trickle_rate),
                )
            }
            style = wire.pick_style(faults.timestamp_style, rng.stream("timestamp_style"))
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
                self._record_unapplied(req, "fault:reset")
                return ApiResponse(0, delay=latency, fault="reset", fault_name="reset")
            if hit["http_error"]:
                body, ctype = _5XX_BODIES[error_status]
                self._record_unapplied(req, f"fault:{error_status}")
                return ApiResponse(
                    error_status,
                    body,
                    (("content-type", ctype), *limit_headers),
                    delay=latency,
                    fault_name="http_error",
                )
            if hit["hang"]:
                # No answer within any sane client timeout; nothing is applied.
                self._record_unapplied(req, "fault:hang")
                return ApiResponse(
                    504,
                    _5XX_BODIES[504][0],
                    (("content-type", "text/plain"),),
                    delay=faults.hang_seconds,
                    fault_name="hang",
                )
            self._stale_hit = hit["stale_read"]
            self._stale_used = False
            self._duplicate_variant = hit["duplicate_message_variant"]
            self._duplicate_as_funds = hit["duplicate_refused_as_funds"]
            read_faults = self.broker.read_faults
            read_faults.clear()
            try:
                response = self._route(req, path)
            finally:
                self._stale_hit = False
            if self._stale_used:
                read_faults.add("stale_read")
            if response.fault_name is None and read_faults:
                name = next(n for n in _READ_FAULT_ORDER if n in read_faults)
                response = replace(response, fault_name=name)
            if style != "micro":
                response = _restyled(response, style)
            response = self._maybe_lose_submit(req, path, response, lost_mode)
            trickle = 0.0
            if hit["trickle"] and response.fault_name != "lost_submit" and response.body:
                trickle = faults.trickle_seconds_per_byte
                if response.fault_name is None:
                    response = replace(response, fault_name="trickle")
            return ApiResponse(
                response.status,
                response.body,
                response.headers + limit_headers,
                delay=response.delay + latency,
                fault=response.fault,
                fault_name=response.fault_name,
                trickle_seconds=trickle,
            )

    def restart_rate_window(self) -> None:
        """Start a fresh rate-limit window and end any 429 burst (after a reset)."""
        self._window_count = 0
        self._burst_left = 0

    # ------------------------------------------------------------------ cross-cutting
    def _authenticate(self, req: ApiRequest) -> ApiResponse | None:
        key = req.headers.get("apca-api-key-id")
        secret = req.headers.get("apca-api-secret-key")
        if not key or not secret or key != self.key_id:
            return json_response(401, {"code": 40110000, "message": "request is not authorized"})
        if secret != self.secret_key:
            return json_response(
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
            limited = json_response(429, {"code": 42910000, "message": "rate limit exceeded"})
            self.burst_429s_total += 1
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
            self.rate_limited_total += 1
            return headers, json_response(
                429, {"code": 42910000, "message": "rate limit exceeded"}, headers
            )
        return headers, None

    def _record_unapplied(self, req: ApiRequest, outcome: str) -> None:
        # Ground truth keeps every POST and PATCH received, applied or not.
        path = req.path.rstrip("/")
        if req.method == "POST" and path.endswith("/v2/orders"):
            self.broker.record_post(client_order_id_of(req.body), body_of(req.body), outcome)
        elif req.method == "PATCH" and (m := _ORDER_PATH.search(path)) is not None:
            self.broker.record_patch(unquote(m.group(1)), body_of(req.body), outcome)

    def _maybe_lose_submit(
        self, req: ApiRequest, path: str, resp: ApiResponse, mode: str | None
    ) -> ApiResponse:
        if mode is None:
            return resp
        if not (req.method == "POST" and path.rstrip("/") == "/v2/orders" and resp.status == 200):
            return resp
        faults = self.broker.faults
        # The applied order's own client_order_id (minted when the body had none).
        coid = client_order_id_of(resp.body)
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
                return error_response(err)
        if matched_path:
            return json_response(405, {"code": 40510000, "message": "method not allowed"})
        return not_found_page()

    def _account(self, req: ApiRequest) -> ApiResponse:
        return json_response(200, self.broker.account_view())

    def _submit(self, req: ApiRequest) -> ApiResponse:
        coid = client_order_id_of(req.body)
        body = body_of(req.body)
        try:
            order_req = parse_order_request(req.body)
            order = self.broker.submit(order_req)
        except DuplicateClientOrderIdError as err:
            if self._duplicate_as_funds and err.existing.is_open:
                # Funds are checked before uniqueness, and the live order holds them.
                refusal = self._funds_refusal(order_req)
                self.broker.record_post(coid, body, f"refused:{refusal.status}")
                raise refusal from None
            self.broker.record_post(coid, body, "duplicate")
            if self._duplicate_variant:
                raise SimError(
                    422,
                    40010001,
                    "client order id must be unique",
                    fault="duplicate_message_variant",
                ) from None
            raise
        except SimError as err:
            self.broker.record_post(coid, body, f"refused:{err.status}")
            raise
        self.broker.record_post(order.client_order_id, body, "accepted")
        return json_response(200, self.broker.nest(self.broker.order_view(order)))

    def _funds_refusal(self, order_req: OrderRequest) -> SimError:
        cost = self.broker.cost_basis(order_req)
        # What is left is less than the cost: the duplicate's original holds the rest.
        shown = min(self.broker.buying_power(), max(Decimal(0), cost - Decimal("0.01")))
        return SimError(
            403,
            40310000,
            "insufficient buying power",
            fault="duplicate_refused_as_funds",
            buying_power=wire.num(shown),
            cost_basis=wire.num(cost),
        )

    def _replace(self, req: ApiRequest, order_id: str) -> ApiResponse:
        body = body_of(req.body)
        try:
            self.broker.require_visible(order_id)
            change = parse_replace_request(req.body)
            new = self.broker.replace(order_id, change)
        except DuplicateClientOrderIdError:
            self.broker.record_patch(order_id, body, "duplicate")
            raise
        except SimError as err:
            self.broker.record_patch(order_id, body, f"refused:{err.status}")
            raise
        self.broker.record_patch(order_id, body, "accepted", new_order_id=new.id)
        return json_response(200, self.broker.order_view(new))

    def _list_orders(self, req: ApiRequest) -> ApiResponse:
        nested = parse_bool(req.arg("nested"), "nested")
        if not nested:  # a scan reads only as many orders as the answer holds
            orders = select_orders(req, self.broker.scan_orders)
            return json_response(200, [self.broker.order_view(o) for o in orders])
        # nested=true rolls legs up under their parent.
        listed = [o for o in self.broker.list_orders() if not o.parent_id]
        views = [self.broker.order_view(o) for o in select_orders(req, listed)]
        return json_response(200, [self.broker.nest(v) for v in views])

    def _cancel_all(self, req: ApiRequest) -> ApiResponse:
        results = self.broker.cancel_all()
        return json_response(
            207, [{"id": oid, "status": code, "body": None} for oid, code in results]
        )

    def _stale(self) -> bool:
        # Drawn once per request in handle(); a read that uses it is marked stale_read.
        if self._stale_hit:
            self._stale_used = True
        return self._stale_hit

    def _by_client_id(self, req: ApiRequest) -> ApiResponse:
        coid = req.arg("client_order_id")
        if not coid:
            raise invalid("client_order_id is required")
        return json_response(200, self.broker.get_order_by_client_id(coid, stale=self._stale()))

    def _get_order(self, req: ApiRequest, order_id: str) -> ApiResponse:
        view = self.broker.get_order(order_id, stale=self._stale())
        if parse_bool(req.arg("nested"), "nested"):
            view = self.broker.nest(view)
        return json_response(200, view)

    def _cancel(self, req: ApiRequest, order_id: str) -> ApiResponse:
        self.broker.require_visible(order_id)
        self.broker.cancel(order_id)
        return ApiResponse(204)

    def _positions(self, req: ApiRequest) -> ApiResponse:
        return json_response(
            200, [self.broker.position_view(p, price) for p, price in self.broker.position_rows()]
        )

    def _position(self, req: ApiRequest, symbol: str) -> ApiResponse:
        asset = self.broker.config.assets.find(symbol)
        wanted = asset.symbol if asset is not None else symbol.upper()
        for position, price in self.broker.position_rows():
            if position.symbol == wanted or position.asset_id == symbol:
                return json_response(200, self.broker.position_view(position, price))
        raise SimError(404, 40410000, "position does not exist")

    def _close_position(self, req: ApiRequest, symbol: str) -> ApiResponse:
        asset = self.broker.config.assets.find(symbol)
        wanted = asset.symbol if asset is not None else symbol.upper()
        return json_response(200, self._close(wanted, req.arg("qty"), req.arg("percentage")))

    def _close(self, symbol: str, qty_s: str | None, pct_s: str | None) -> dict[str, Any]:
        position = self.broker.positions.get(symbol)
        if position is None or position.qty == 0:
            raise SimError(404, 40410000, "position does not exist")
        held = abs(position.qty)
        if qty_s is not None and pct_s is not None:
            raise invalid("only one of qty or percentage may be given")
        if qty_s is not None:
            qty = parse_decimal(qty_s, "qty")
            # As on submit, at most 9 decimals: qty=1e-99999 made a 100 KB number in the
            # order's JSON (1e-999999999 a gigabyte).
            if 0 < qty <= held and qty != qty.quantize(Decimal("0.000000001")):
                raise invalid("qty must have at most 9 decimal places")
        elif pct_s is not None:
            pct = parse_decimal(pct_s, "percentage")
            if not 0 < pct <= 100:
                raise invalid("percentage must be in (0, 100]")
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
                time_in_force="gtc" if "/" in symbol else "day",
                qty=qty,
            )
        )
        return self.broker.order_view(order)

    def _close_all(self, req: ApiRequest) -> ApiResponse:
        if parse_bool(req.arg("cancel_orders"), "cancel_orders"):
            self.broker.cancel_all()
        out = []
        for symbol in sorted(self.broker.positions):
            try:
                body = self._close(symbol, None, None)
                out.append({"symbol": symbol, "status": 200, "body": body, "order_id": body["id"]})
            except SimError as err:
                if err.status != 404:
                    out.append({"symbol": symbol, "status": err.status, "body": err.body()})
        return json_response(207, out)

    def _activities(self, req: ApiRequest) -> ApiResponse:
        types = (req.arg("activity_types") or "FILL").upper().split(",")
        if "FILL" not in types:
            return json_response(200, [])
        return market_api.fill_activities(self, req)
