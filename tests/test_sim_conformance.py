"""Every endpoint the simulator implements answers what Alpaca's published OpenAPI spec says.

The cases below drive the simulator over HTTP on loopback: through the real alpaca-py
``TradingClient`` where it has the call (its session's responses are captured), and raw
``requests`` for error paths. Every captured response is validated against the response
schema of its operation in the vendored spec (tests/data/trading-api.json, info.version
2.0.1), errors against ``Error``. The test walks the simulator's own route table: a route
with no case here fails as "no conformance case", so endpoints added later are never
silently unchecked. Where the spec and real Alpaca disagree the test follows real Alpaca:
see ``NULLABLE_IN_PRACTICE`` in tests/conformance_support.py and ``STATUS_EXCEPTIONS`` here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)

from fillguard.sim import BrokerConfig, SimServer, run_simulator
from tests.conformance_support import Captured, Spec

pytestmark = pytest.mark.integration

# Statuses the simulator answers that the spec does not list for the operation, and why.
# These are validated against Error like any error; the list says they are deliberate.
STATUS_EXCEPTIONS: dict[tuple[str, str, int], str] = {
    ("GET", "/v2/orders/{order_id}", 404): "real Alpaca answers 404 for an unknown order id",
    ("GET", "/v2/orders:by_client_order_id", 404): "real Alpaca: 404 for an unknown id",
    ("GET", "/v2/positions/{symbol_or_asset_id}", 404): "real Alpaca: 404 with no position",
    ("DELETE", "/v2/positions/{symbol_or_asset_id}", 404): "real Alpaca: 404 with no position",
    ("GET", "/v2/orders", 422): "real Alpaca refuses a bad status or limit with 422",
    ("POST", "/v2/orders", 401): "every endpoint: 401 without keys (real Alpaca)",
    ("PATCH", "/v2/orders/{order_id}", 422): "real Alpaca: a finished order is not replaceable",
    ("GET", "/v2/account/activities/{activity_type}", 422): "real Alpaca: bad page_size",
}

CONFIG = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("MSFT", Decimal("400"))),
)


@dataclass
class Ctx:
    """What a case drives: the server, a capturing client and raw HTTP helpers."""

    server: SimServer
    client: Any
    captured: list[Captured] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {
            "APCA-API-KEY-ID": self.server.key_id,
            "APCA-API-SECRET-KEY": self.server.secret_key,
        }

    def raw(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Captured:
        headers = self.auth if auth else {}
        resp = requests.request(
            method, f"{self.server.base_url}{path}", headers=headers, timeout=30, **kwargs
        )
        return self._capture(resp)

    def hook(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A requests response hook: capture, and leave the response as it is."""
        self._capture(resp)

    def _capture(self, resp: requests.Response) -> Captured:
        path = urlsplit(resp.request.url or "").path
        entry = Captured(
            method=resp.request.method or "GET",
            path=path,
            status=resp.status_code,
            content_type=resp.headers.get("content-type", ""),
            body=resp.content,
        )
        self.captured.append(entry)
        return entry

    def sdk_error(self, call: Callable[[], Any]) -> None:
        """Run an SDK call expected to fail (its response is captured all the same)."""
        with pytest.raises(APIError):
            call()

    def wait_filled(self, order_id: str) -> None:
        deadline = time.monotonic() + 10
        while self.server.broker.orders[order_id].status != "filled":
            assert time.monotonic() < deadline, "order did not fill"
            time.sleep(0.01)


def _market(qty: str = "1", side: OrderSide = OrderSide.BUY, symbol: str = "AAPL") -> Any:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY)


def _resting(ctx: Ctx, coid: str | None = None) -> Any:
    order = LimitOrderRequest(
        symbol="AAPL",
        qty="1",
        side=OrderSide.BUY,
        time_in_force=TimeInForce.GTC,
        limit_price="50",
        client_order_id=coid,
    )
    return ctx.client.submit_order(order)


def _filled(ctx: Ctx) -> Any:
    order = ctx.client.submit_order(_market())
    ctx.wait_filled(str(order.id))
    return order


# ---------------------------------------------------------------------------- cases


def case_account(ctx: Ctx) -> None:
    ctx.client.get_account()
    ctx.raw("GET", "/v2/account", auth=False)  # 401


def case_clock(ctx: Ctx) -> None:
    ctx.client.get_clock()


def case_asset(ctx: Ctx) -> None:
    ctx.client.get_asset("AAPL")
    ctx.raw("GET", "/v2/assets/not%20a%20symbol")  # 404


def case_submit(ctx: Ctx) -> None:
    ctx.client.submit_order(_market())
    _resting(ctx)
    ctx.raw("POST", "/v2/orders", json={"symbol": "AAPL", "side": "buy"})  # 422
    ctx.sdk_error(lambda: ctx.client.submit_order(_market(qty="100000000")))  # 403 funds
    ctx.raw("POST", "/v2/orders", auth=False, json={})  # 401


def case_list_orders(ctx: Ctx) -> None:
    _resting(ctx)
    _filled(ctx)
    ctx.client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    ctx.client.get_orders()
    ctx.raw("GET", "/v2/orders", params={"status": "bogus"})  # 422


def case_cancel_all(ctx: Ctx) -> None:
    _resting(ctx)
    ctx.client.cancel_orders()


def case_by_client_id(ctx: Ctx) -> None:
    _resting(ctx, coid="conformance-coid")
    ctx.client.get_order_by_client_id("conformance-coid")
    ctx.raw("GET", "/v2/orders:by_client_order_id", params={"client_order_id": "nope"})  # 404


def case_get_order(ctx: Ctx) -> None:
    order = _filled(ctx)
    ctx.client.get_order_by_id(order.id)
    ctx.raw("GET", "/v2/orders/00000000-0000-4000-8000-000000000000")  # 404


def case_cancel(ctx: Ctx) -> None:
    ctx.client.cancel_order_by_id(_resting(ctx).id)  # 204
    filled = _filled(ctx)
    ctx.sdk_error(lambda: ctx.client.cancel_order_by_id(filled.id))  # 422


def case_replace(ctx: Ctx) -> None:
    order = _resting(ctx)
    ctx.client.replace_order_by_id(order.id, ReplaceOrderRequest(limit_price=51))
    filled = _filled(ctx)
    ctx.raw("PATCH", f"/v2/orders/{filled.id}", json={"limit_price": "52"})  # 422


def case_positions(ctx: Ctx) -> None:
    _filled(ctx)
    ctx.client.get_all_positions()


def case_position(ctx: Ctx) -> None:
    _filled(ctx)
    deadline = time.monotonic() + 10
    while True:
        try:
            ctx.client.get_open_position("AAPL")
            break
        except APIError:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    ctx.raw("GET", "/v2/positions/MSFT")  # 404


def case_close_position(ctx: Ctx) -> None:
    _filled(ctx)
    _filled(ctx)
    ctx.client.close_position("AAPL", ClosePositionRequest(qty="1"))
    ctx.raw("DELETE", "/v2/positions/MSFT")  # 404


def case_close_all(ctx: Ctx) -> None:
    _filled(ctx)
    ctx.client.close_all_positions(cancel_orders=True)


def case_fills(ctx: Ctx) -> None:
    _filled(ctx)
    ctx.raw("GET", "/v2/account/activities/FILL")
    ctx.raw("GET", "/v2/account/activities/FILL", params={"page_size": "x"})  # 422


def case_activities(ctx: Ctx) -> None:
    _filled(ctx)
    ctx.raw("GET", "/v2/account/activities")
    ctx.raw("GET", "/v2/account/activities", params={"activity_types": "DIV"})


def case_calendar(ctx: Ctx) -> None:
    ctx.client.get_calendar()
    ctx.raw("GET", "/v2/calendar", params={"start": "2026-03-02", "end": "2026-03-06"})


def case_assets(ctx: Ctx) -> None:
    ctx.client.get_all_assets()
    ctx.raw("GET", "/v2/assets", params={"asset_class": "crypto"})


def case_configurations(ctx: Ctx) -> None:
    ctx.raw("GET", "/v2/account/configurations")


def case_patch_configurations(ctx: Ctx) -> None:
    ctx.raw("PATCH", "/v2/account/configurations", json={"no_shorting": False})


# (method, the simulator's route pattern) -> its case.
CASES: dict[tuple[str, str], Callable[[Ctx], None]] = {
    ("GET", r"/v2/account"): case_account,
    ("GET", r"/v2/clock"): case_clock,
    ("GET", r"/v2/calendar"): case_calendar,
    ("GET", r"/v2/assets"): case_assets,
    ("GET", r"/v2/assets/([^/]+|[^/]+/[^/]+)"): case_asset,
    ("GET", r"/v2/account/configurations"): case_configurations,
    ("PATCH", r"/v2/account/configurations"): case_patch_configurations,
    ("POST", r"/v2/orders"): case_submit,
    ("GET", r"/v2/orders"): case_list_orders,
    ("DELETE", r"/v2/orders"): case_cancel_all,
    ("GET", r"/v2/orders:by_client_order_id"): case_by_client_id,
    ("GET", r"/v2/orders/([^/]+)"): case_get_order,
    ("DELETE", r"/v2/orders/([^/]+)"): case_cancel,
    ("PATCH", r"/v2/orders/([^/]+)"): case_replace,
    ("GET", r"/v2/positions"): case_positions,
    ("DELETE", r"/v2/positions"): case_close_all,
    ("GET", r"/v2/positions/([^/]+)"): case_position,
    ("DELETE", r"/v2/positions/([^/]+)"): case_close_position,
    ("GET", r"/v2/account/activities/([^/]+)"): case_fills,
    ("GET", r"/v2/account/activities"): case_activities,
}


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec()


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with run_simulator(port=0, faults="calm", seed=3, rate_limit=None, config=CONFIG) as sim:
        yield sim


def _route_keys(server: SimServer) -> list[tuple[str, str]]:
    return [(method, pattern.pattern) for method, pattern, _ in server.api._routes]


def _route_of(server: SimServer, method: str, path: str) -> tuple[str, str] | None:
    path = path.rstrip("/") or "/"
    for route_method, pattern, _ in server.api._routes:
        if route_method == method and pattern.fullmatch(path):
            return (route_method, pattern.pattern)
    return None


def _route_ids() -> list[str]:
    return [f"{m} {p}" for m, p in CASES]


def test_the_spec_is_alpacas_2_0_1(spec: Spec) -> None:
    """The vendored file is the published Trading API spec this test was written against."""
    assert spec.version == "2.0.1"
    assert "/v2/orders" in spec.doc["paths"]


def test_every_route_has_a_conformance_case(server: SimServer) -> None:
    """A route added to the simulator without a case here fails loudly, by name."""
    missing = [f"{m} {p}" for m, p in _route_keys(server) if (m, p) not in CASES]
    assert not missing, f"no conformance case for: {', '.join(missing)}"
    stale = [f"{m} {p}" for m, p in CASES if (m, p) not in _route_keys(server)]
    assert not stale, f"conformance cases for routes the simulator no longer has: {stale}"


@pytest.mark.parametrize("key", list(CASES), ids=_route_ids())
def test_responses_match_the_spec(server: SimServer, spec: Spec, key: tuple[str, str]) -> None:
    """Each response of the case's requests matches the spec's schema for its status."""
    server.reset("calm")
    client = server.trading_client()
    client._retry = 0
    ctx = Ctx(server, client)
    client._session.hooks["response"].append(ctx.hook)
    CASES[key](ctx)
    mine = [c for c in ctx.captured if _route_of(server, c.method, c.path) == key]
    assert mine, f"the case for {key} made no request to that route"
    assert any(200 <= c.status < 300 for c in mine), f"no success answer from {key}"
    problems: list[str] = []
    for c in ctx.captured:
        template = spec.operation_path(c.path)
        assert template is not None, f"{c.path} is not in the spec at all"
        found = spec.response_schema(c.method, c.path, c.status)
        operation = spec.doc["paths"][template].get(c.method.lower(), {})
        listed = str(c.status) in operation.get("responses", {})
        if not listed and 200 <= c.status < 300:
            problems.append(f"{c.method} {c.path}: {c.status} not in the spec")
        if not listed and c.status >= 400 and c.status not in (401, 403, 404, 422, 429):
            problems.append(f"{c.method} {c.path}: unexpected {c.status}")
        if found is None:
            if c.body:
                problems.append(f"{c.method} {c.path} {c.status}: body where the spec has none")
            continue
        pointer, schema = found
        if not c.content_type.startswith("application/json"):
            problems.append(f"{c.method} {c.path} {c.status}: content-type {c.content_type}")
            continue
        for error in spec.errors(schema, c.json()):
            problems.append(f"{c.method} {c.path} {c.status} ({pointer}): {error}")
    assert not problems, "\n".join(problems)


def test_status_exceptions_are_real_operations(spec: Spec) -> None:
    """Every listed exception names an operation of the spec (no typo hides a case)."""
    for method, template, _status in STATUS_EXCEPTIONS:
        assert method.lower() in spec.doc["paths"][template]
