"""Who may call ``/_sim/`` (ground truth and control): a token, same origin, JSON writes only.

``/_sim/`` resets the broker, switches faults on and shows every order, so a web page the user
happens to visit must not reach it: a cross-site ``text/plain`` POST needs no CORS preflight.
Over HTTP every ``/_sim/`` call carries the server's control token (header
``X-Fillguard-Sim-Token``, or ``Authorization: Bearer <token>``); a request with an ``Origin``
other than the server's own, or ``Sec-Fetch-Site: cross-site``, is refused; and a write must
be JSON (or have no body). :class:`~fillguard.sim.server.SimServer` mints the token and its
helpers send it; the in-process transport has no network to guard and needs none.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fillguard.sim.messages import ApiRequest, ApiResponse, json_response

__all__ = ["CONTROL_TOKEN_ENV", "CONTROL_TOKEN_HEADER", "new_control_token", "refuse_control"]

CONTROL_TOKEN_HEADER = "X-Fillguard-Sim-Token"
CONTROL_TOKEN_ENV = "FILLGUARD_SIM_CONTROL_TOKEN"
_READS = frozenset({"GET", "HEAD"})


def new_control_token() -> str:
    """A fresh unguessable control token."""
    return secrets.token_urlsafe(24)


def _same_origin(origin: str, host: str | None) -> bool:
    if origin == "null" or host is None:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def _token_of(req: ApiRequest) -> str | None:
    token = req.headers.get(CONTROL_TOKEN_HEADER.lower())
    if token:
        return token
    auth = req.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def refuse_control(req: ApiRequest, token: str | None) -> ApiResponse | None:
    """The refusal of a ``/_sim/`` request that may not pass, or None to let it through.

    ``token`` None: nothing is checked (in-process use, where no browser can reach it).
    """
    if token is None:
        return None
    origin = req.headers.get("origin")
    if req.headers.get("sec-fetch-site") == "cross-site" or (
        origin is not None and not _same_origin(origin, req.headers.get("host"))
    ):
        return json_response(
            403, {"code": 40310000, "message": "cross-origin requests to /_sim/ are refused"}
        )
    given = _token_of(req)
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        return json_response(
            401,
            {
                "code": 40110000,
                "message": f"/_sim/ needs the control token in the {CONTROL_TOKEN_HEADER} "
                "header (printed when the simulator starts)",
            },
        )
    if req.method not in _READS and req.body:
        ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return json_response(
                415,
                {"code": 41510000, "message": "writes to /_sim/ must be application/json"},
            )
    return None
