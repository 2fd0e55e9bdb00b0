"""Fault injection knobs for the simulator, reproducible from a seed.

Every knob draws from its own random stream (:class:`FaultRng`), so switching one knob on never
changes what another knob does for the same seed. Profiles: ``calm`` (no faults), ``rough``
(what a busy day at a real broker looks like) and ``hostile`` (everything, often).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

__all__ = [
    "PROFILES",
    "FaultProfile",
    "FaultRng",
    "Latency",
    "LostSubmitMode",
    "profile_from",
]

LostSubmitMode = Literal["504", "reset", "hang"]
_LOST_MODES: tuple[LostSubmitMode, ...] = ("504", "reset", "hang")
_TIMESTAMP_STYLES = ("micro", "nanos", "offset", "mixed")
# Upper bounds: a knob beyond them is a typo or an attack, never a test (b=1e308 overflowed).
MAX_LATENCY_SECONDS = 60.0
MAX_KNOB_SECONDS = 3600.0
MAX_SECONDS_PER_BYTE = 10.0
_MAX_COUNTS = {"rate_limit_burst_length": 10_000, "max_partial_fills": 100}


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution in seconds: ``fixed`` (a), ``uniform`` (a..b) or ``lognormal``.

    For ``lognormal``, ``a`` is the median and ``b`` the 99th percentile; draws are capped at
    ``4 * b`` so a test never waits on a freak tail.
    """

    kind: Literal["fixed", "uniform", "lognormal"] = "fixed"
    a: float = 0.0
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "uniform", "lognormal"):
            raise ValueError(f"latency kind must be fixed, uniform or lognormal, got {self.kind!r}")
        for bound in (self.a, self.b):
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise ValueError(f"latency bounds must be numbers, got {bound!r}")
        if not (math.isfinite(self.a) and math.isfinite(self.b)) or self.a < 0 or self.b < 0:
            raise ValueError("latency bounds must be finite and >= 0")
        if max(self.a, self.b) > MAX_LATENCY_SECONDS:
            raise ValueError(f"latency bounds must be at most {MAX_LATENCY_SECONDS} s")
        if self.kind != "fixed" and self.b < self.a:
            raise ValueError("latency b must be >= a")

    def sample(self, rng: random.Random) -> float:
        """Draw one latency in seconds."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.a <= 0:
            return 0.0
        # 2.326 = z of the 99th percentile of the standard normal.
        sigma = max(math.log(max(self.b, self.a) / self.a) / 2.326, 1e-9)
        cap = 4 * max(self.b, self.a)
        # lognormvariate is exp(normalvariate): the same draw, capped before exp can overflow.
        z = rng.normalvariate(math.log(self.a), sigma)
        return cap if z >= math.log(cap) else min(math.exp(z), cap)

    @classmethod
    def parse(cls, value: Any) -> Latency:
        """Build from a Latency, a number (fixed), a ``[a, b]`` pair (uniform) or a dict."""
        if isinstance(value, Latency):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls("fixed", float(value), float(value))
        try:
            if isinstance(value, list | tuple) and len(value) == 2:
                return cls("uniform", float(value[0]), float(value[1]))
            if isinstance(value, dict):
                return cls(
                    str(value.get("kind", "fixed")),  # type: ignore[arg-type]
                    float(value.get("a", 0.0)),
                    float(value.get("b", value.get("a")) or 0.0),
                )
        except (TypeError, ValueError, OverflowError) as err:
            message = str(err) if str(err).startswith("latency") else f"latency: {err}"
            raise ValueError(message) from None
        raise ValueError(f"cannot read a latency from {value!r}")


def _rate(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultProfile:
    """Every fault knob. Rates are probabilities per request, per order or per event."""

    name: str = "custom"
    # --- REST, per request -------------------------------------------------------------
    http_error_rate: float = 0.0  # 500/502/503/504 before anything is applied
    rate_limit_burst_rate: float = 0.0  # chance a request starts a burst of 429s
    rate_limit_burst_length: int = 5  # requests answered 429 in one burst
    reset_rate: float = 0.0  # connection reset before anything is applied
    latency: Latency = field(default_factory=Latency)  # added to every response
    hang_rate: float = 0.0  # no answer for hang_seconds (longer than a client timeout)
    hang_seconds: float = 15.0
    stale_read_rate: float = 0.0  # GET of an order shows it as it was stale_read_seconds ago
    stale_read_seconds: float = 0.3
    lost_submit_rate: float = 0.0  # POST /v2/orders applied, then the response is lost
    lost_submit_modes: tuple[LostSubmitMode, ...] = _LOST_MODES
    # --- broker core, per order --------------------------------------------------------
    missing_price_rate: float = 0.0  # status filled while filled_avg_price is still null
    missing_price_seconds: float = 0.3
    cancel_race_rate: float = 0.0  # a fill of the rest lands while the cancel is pending
    partial_fill_rate: float = 0.0  # the order fills in several executions
    max_partial_fills: int = 4
    reject_rate: float = 0.0  # routed, then rejected
    position_lag_seconds: float = 0.0  # GET /v2/positions shows positions this much late
    # --- how brokers really misbehave (issue 7) ------------------------------------------
    # Per order: for half_update_seconds after each execution, REST reads show a half-written
    # record (variant per order: status_first, qty_first or price_last).
    half_update_rate: float = 0.0
    half_update_seconds: float = 0.3
    # Per order: the first REST read of the order (by id or client_order_id) answers 403 or 401.
    lookup_refused_rate: float = 0.0
    # Per order: every REST read answers 404 until not_found_lag_seconds after acceptance.
    not_found_lag_rate: float = 0.0
    not_found_lag_seconds: float = 8.0
    # Per POST: a duplicate client_order_id is refused as "client order id must be unique".
    duplicate_message_variant_rate: float = 0.0
    # Per POST: a duplicate of a still-open order is refused 403 "insufficient buying power".
    duplicate_refused_as_funds_rate: float = 0.0
    # Per execution: positions show it position_long_lag_seconds late (on top of the lag above).
    position_long_lag_rate: float = 0.0
    position_long_lag_seconds: float = 5.0
    # Per request: the body goes one byte every trickle_seconds_per_byte.
    trickle_rate: float = 0.0
    trickle_seconds_per_byte: float = 0.5
    # Per order: a routed GTC order goes done_for_day after a while, and resumes later.
    done_for_day_rate: float = 0.0
    done_for_day_after_seconds: float = 1.0
    done_for_day_seconds: float = 2.0
    # Per order: another client of the account replaces a resting limit order at the price.
    external_replace_rate: float = 0.0
    external_replace_after_seconds: float = 0.5
    # Per order: when the order routes, another client of the account buys
    # outside_trade_qty of its symbol at market, so the account's position is no longer what
    # the client's own fills explain (a position mismatch for its book). Ledger: the outside
    # order's post has "source": "outside".
    outside_trade_rate: float = 0.0
    outside_trade_qty: int = 1
    # How timestamps are written in REST bodies and stream events: micro, nanos, offset, mixed.
    timestamp_style: str = "micro"
    # --- trade_updates stream, per event -----------------------------------------------
    stream_drop_rate: float = 0.0
    stream_duplicate_rate: float = 0.0
    stream_delay_rate: float = 0.0
    stream_delay_seconds: float = 0.5
    stream_disconnect_rate: float = 0.0  # the server drops the connection after an event
    # --- trade_updates stream: gaps and silences (per event) ---------------------------
    # A gap: the connection is cut as on a network drop and the account's one stream slot
    # stays held, as by Alpaca's stale half-open socket, for stream_gap_seconds: upgrades
    # are refused with HTTP 429 meanwhile and every event in the gap is lost.
    stream_gap_rate: float = 0.0
    stream_gap_seconds: float = 2.0
    # A silence: the socket stays open but the server sends nothing (and reads nothing, so
    # pings go unanswered) for stream_silence_seconds; every event in it is lost.
    stream_silence_rate: float = 0.0
    stream_silence_seconds: float = 3.0

    def __post_init__(self) -> None:
        # Knobs arrive from JSON (PUT /_sim/faults): check types before comparing values.
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_rate", "_seconds", "_seconds_per_byte")) and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
        for name in ("rate_limit_burst_length", "max_partial_fills", "outside_trade_qty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not isinstance(self.latency, Latency):
            raise ValueError(f"latency must be a Latency, got {self.latency!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate"):
                _rate(f.name, value)
            elif f.name.endswith(("_seconds", "_seconds_per_byte")):
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{f.name} must be finite and >= 0, got {value}")
                top = MAX_SECONDS_PER_BYTE if f.name.endswith("_per_byte") else MAX_KNOB_SECONDS
                if value > top:
                    raise ValueError(f"{f.name} must be at most {top}, got {value}")
        if self.timestamp_style not in _TIMESTAMP_STYLES:
            raise ValueError(
                f"timestamp_style must be one of {', '.join(_TIMESTAMP_STYLES)}, "
                f"got {self.timestamp_style!r}"
            )
        if self.rate_limit_burst_length < 1:
            raise ValueError("rate_limit_burst_length must be >= 1")
        if self.outside_trade_qty < 1:
            raise ValueError("outside_trade_qty must be >= 1")
        if self.max_partial_fills < 2:
            raise ValueError("max_partial_fills must be >= 2")
        for name, top in _MAX_COUNTS.items():
            if getattr(self, name) > top:
                raise ValueError(f"{name} must be at most {top}, got {getattr(self, name)}")
        if not isinstance(self.name, str) or len(self.name) > 100:
            raise ValueError("name must be a string of at most 100 characters")
        bad = [m for m in self.lost_submit_modes if m not in _LOST_MODES]
        if bad or not self.lost_submit_modes:
            raise ValueError(f"lost_submit_modes must be a non-empty subset of {_LOST_MODES}")

    @property
    def is_calm(self) -> bool:
        """True when no knob is on."""
        return self == replace(CALM, name=self.name)

    def with_(self, **changes: Any) -> FaultProfile:
        """A copy with some knobs changed (values parsed like :func:`profile_from`)."""
        return profile_from({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        data = asdict(self)
        data["latency"] = asdict(self.latency)
        data["lost_submit_modes"] = list(self.lost_submit_modes)
        return data


def profile_from(value: str | dict[str, Any] | FaultProfile | None) -> FaultProfile:
    """A profile from its name, a dict of knobs (optionally with a ``base`` profile name), or itself."""
    if value is None:
        return CALM
    if isinstance(value, FaultProfile):
        return value
    if isinstance(value, str):
        try:
            return PROFILES[value]
        except KeyError:
            raise ValueError(
                f"unknown fault profile {value!r}; choose one of {', '.join(PROFILES)}"
            ) from None
    data = dict(value)
    base = PROFILES.get(str(data.pop("base", "calm")), CALM)
    known = {f.name for f in fields(FaultProfile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown fault knobs: {', '.join(unknown)}")
    try:
        if "latency" in data:
            data["latency"] = Latency.parse(data["latency"])
        if "lost_submit_modes" in data:
            modes = data["lost_submit_modes"]
            if not isinstance(modes, list | tuple):
                raise ValueError(f"lost_submit_modes must be a list, got {modes!r}")
            data["lost_submit_modes"] = tuple(modes)
        data.setdefault("name", "custom")
        return replace(base, **data)
    except TypeError as err:  # a value of the wrong type for a knob
        raise ValueError(f"invalid fault knob value: {err}") from None


CALM = FaultProfile(name="calm")
ROUGH = FaultProfile(
    name="rough",
    http_error_rate=0.03,
    rate_limit_burst_rate=0.005,
    rate_limit_burst_length=3,
    reset_rate=0.01,
    latency=Latency("lognormal", 0.003, 0.03),
    hang_rate=0.002,
    hang_seconds=3.0,
    stale_read_rate=0.05,
    stale_read_seconds=0.2,
    lost_submit_rate=0.05,
    missing_price_rate=0.1,
    missing_price_seconds=0.2,
    cancel_race_rate=0.3,
    partial_fill_rate=0.2,
    reject_rate=0.02,
    position_lag_seconds=0.1,
    half_update_rate=0.05,
    duplicate_message_variant_rate=0.5,
    timestamp_style="nanos",
    stream_drop_rate=0.02,
    stream_duplicate_rate=0.02,
    stream_delay_rate=0.05,
    stream_delay_seconds=0.2,
    stream_disconnect_rate=0.002,
    stream_gap_rate=0.001,
    stream_gap_seconds=1.0,
)
HOSTILE = FaultProfile(
    name="hostile",
    http_error_rate=0.15,
    rate_limit_burst_rate=0.03,
    rate_limit_burst_length=5,
    reset_rate=0.05,
    latency=Latency("lognormal", 0.005, 0.08),
    hang_rate=0.01,
    hang_seconds=3.0,
    stale_read_rate=0.25,
    stale_read_seconds=0.4,
    lost_submit_rate=0.25,
    missing_price_rate=0.5,
    missing_price_seconds=0.4,
    cancel_race_rate=0.6,
    partial_fill_rate=0.5,
    reject_rate=0.05,
    position_lag_seconds=0.4,
    half_update_rate=0.3,
    lookup_refused_rate=0.1,
    not_found_lag_rate=0.05,
    duplicate_message_variant_rate=0.5,
    duplicate_refused_as_funds_rate=0.3,
    position_long_lag_rate=0.05,
    trickle_rate=0.003,
    done_for_day_rate=0.1,
    external_replace_rate=0.05,
    timestamp_style="mixed",
    stream_drop_rate=0.15,
    stream_duplicate_rate=0.1,
    stream_delay_rate=0.2,
    stream_delay_seconds=0.5,
    stream_disconnect_rate=0.02,
    stream_gap_rate=0.005,
    stream_gap_seconds=2.0,
    stream_silence_rate=0.002,
    stream_silence_seconds=3.0,
)
PROFILES: dict[str, FaultProfile] = {p.name: p for p in (CALM, ROUGH, HOSTILE)}


class FaultRng:
    """One independent, seeded random stream per knob name."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    def stream(self, name: str) -> random.Random:
        """The random stream of knob ``name`` (created on first use, seeded by seed and name)."""
        with self._lock:
            rng = self._streams.get(name)
            if rng is None:
                rng = self._streams[name] = random.Random(f"fillguard/{self.seed}/{name}")
            return rng

    def keyed(self, name: str, key: object) -> random.Random:
        """A fresh stream of knob ``name`` for one ``key`` (an order's number).

        Per-order knobs draw here, so what a knob does to an order depends only on the seed
        and which order it is, never on what other knobs did to earlier orders.
        """
        return random.Random(f"fillguard/{self.seed}/{name}/{key}")

    def chance_for(self, name: str, rate: float, key: object) -> bool:
        """Like :meth:`chance`, drawn from the ``key``'s own stream of knob ``name``."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self.keyed(name, key).random() < rate

    def chance(self, name: str, rate: float) -> bool:
        """Draw from the knob's stream: True with probability ``rate``.

        A rate of 0 or 1 draws nothing, so a knob that is off leaves its stream untouched.
        """
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self.stream(name).random() < rate
