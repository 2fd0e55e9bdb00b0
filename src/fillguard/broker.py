"""The one adapter over alpaca-py: every broker call fillguard makes goes through :class:`BrokerClient`.

With alpaca-py's ``TradingClient`` (any ``RESTClient``) it uses the SDK's own raw ``get``,
``post`` and ``delete``: the request still goes through the SDK (its URL building, auth
headers and session, which fillguard's transport owns), but

* an order is sent as a body of exact decimal strings (``"qty": "1.5"``), not the floats the
  SDK's request models hold;
* answers come back as plain JSON, read by the tolerant :class:`~fillguard.snapshot.OrderSnapshot`,
  so a status or enum value the SDK's models do not know yet never breaks a read.

Any other object with the SDK's method names (a test double, a wrapper), and any method a
``TradingClient`` subclass overrides, is called through that method. Construction checks the client up front: missing methods and credentials with
whitespace or control characters raise :class:`~fillguard.errors.InvalidInputError` before any
request, naming the field but never echoing a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fillguard.errors import InvalidInputError
from fillguard.logs import register_secret

__all__ = ["ENGINE_METHODS", "EXECUTOR_METHODS", "BrokerClient", "check_credentials"]

#: What the fill detection engine calls (by SDK name).
ENGINE_METHODS: tuple[str, ...] = ("get_order_by_id", "cancel_order_by_id")
#: What the executor calls on top of the engine's.
EXECUTOR_METHODS: tuple[str, ...] = (
    *ENGINE_METHODS,
    "submit_order",
    "get_order_by_client_id",
    "get_open_position",
)
_CREDENTIALS = (
    ("_api_key", "api_key"),
    ("_secret_key", "secret_key"),
    ("_oauth_token", "oauth_token"),
)


def _is_rest_client(client: object) -> bool:
    try:
        from alpaca.common.rest import RESTClient
    except ImportError:  # pragma: no cover - alpaca-py is a dependency
        return False
    return isinstance(client, RESTClient)


def _sdk_own(client: object, name: str) -> bool:
    """Whether ``client.name`` is alpaca-py's own TradingClient method (not an override)."""
    try:
        from alpaca.trading.client import TradingClient
    except ImportError:  # pragma: no cover - alpaca-py is a dependency
        return False
    bound = getattr(client, name, None)
    return getattr(bound, "__func__", None) is getattr(TradingClient, name, object())


def check_credentials(client: object) -> None:
    """Register the client's key and secret for redaction; refuse ones that cannot be sent.

    A key or secret with whitespace or control characters (a newline from a file, a stray
    space) would fail in the HTTP layer with the value inside the error text; it is refused
    here instead, naming the field and not the value.
    """
    for attr, name in _CREDENTIALS:
        value = getattr(client, attr, None)
        if not isinstance(value, str):
            continue
        register_secret(value)
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise InvalidInputError(
                name,
                "contains whitespace or control characters (a trailing newline from a file?); "
                "the value is not shown",
            )


class BrokerClient:
    """Broker calls over one alpaca-py client (or an object with its method names)."""

    def __init__(self, client: object, *, needs: Iterable[str] = ENGINE_METHODS) -> None:
        if client is None:
            raise InvalidInputError("alpaca_client", "is None: pass alpaca-py's TradingClient")
        self.client: Any = client
        self.raw = _is_rest_client(client)
        check_credentials(client)
        if not self.raw:
            missing = [name for name in needs if not callable(getattr(client, name, None))]
            if missing:
                raise InvalidInputError(
                    "alpaca_client",
                    f"{type(client).__name__} lacks {', '.join(missing)}: pass alpaca-py's "
                    "TradingClient or an object with its methods",
                )

    def _direct(self, name: str) -> bool:
        # The endpoint directly only where the method is alpaca-py's own: a subclass's or an
        # instance's override (a wrapper, a test's patch) is honoured, checked at each call.
        return self.raw and (_sdk_own(self.client, name) or not hasattr(self.client, name))

    def submit(self, body: Mapping[str, str]) -> Any:
        """POST /v2/orders with ``body`` as it is (exact decimal strings)."""
        if self._direct("submit_order"):
            return self.client.post("/orders", dict(body))
        return self.client.submit_order(_sdk_request(body))

    def get_order(self, order_id: str) -> Any:
        """GET /v2/orders/{id}."""
        if self._direct("get_order_by_id"):
            return self.client.get(f"/orders/{order_id}")
        return self.client.get_order_by_id(order_id)

    def get_order_by_client_id(self, client_order_id: str) -> Any:
        """GET /v2/orders:by_client_order_id."""
        if self._direct("get_order_by_client_id"):
            return self.client.get(
                "/orders:by_client_order_id", {"client_order_id": client_order_id}
            )
        return self.client.get_order_by_client_id(client_order_id)

    def cancel(self, order_id: str) -> None:
        """DELETE /v2/orders/{id} (204: the cancel request was accepted, nothing more)."""
        if self._direct("cancel_order_by_id"):
            self.client.delete(f"/orders/{order_id}")
        else:
            self.client.cancel_order_by_id(order_id)

    def get_position(self, symbol: str) -> Any:
        """GET /v2/positions/{symbol} (404 means flat)."""
        if self._direct("get_open_position"):
            return self.client.get(f"/positions/{symbol}")
        return self.client.get_open_position(symbol)

    def list_orders(self, params: Mapping[str, str]) -> Any:
        """GET /v2/orders with query ``params`` (a list of orders), or None if unsupported."""
        if self.raw:
            return self.client.get("/orders", dict(params))
        get = getattr(self.client, "get", None)
        return get("/orders", dict(params)) if callable(get) else None

    @property
    def can_list_activities(self) -> bool:
        """Whether FILL activities can be read (alpaca-py has no method for them)."""
        return self.raw or callable(getattr(self.client, "get", None))

    def fill_activities(self, params: Mapping[str, str | int]) -> Any:
        """GET /v2/account/activities/FILL with query ``params``."""
        return self.client.get("/account/activities/FILL", dict(params))


def _sdk_request(body: Mapping[str, str]) -> Any:
    """An alpaca-py request model for clients that only take models (floats: not on the wire)."""
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

    common: dict[str, Any] = {
        "symbol": body["symbol"],
        "qty": float(body["qty"]),
        "side": OrderSide(body["side"]),
        "time_in_force": TimeInForce(body["time_in_force"]),
        "client_order_id": body["client_order_id"],
    }
    if body.get("type") == "limit":
        return LimitOrderRequest(limit_price=float(body["limit_price"]), **common)
    return MarketOrderRequest(**common)
