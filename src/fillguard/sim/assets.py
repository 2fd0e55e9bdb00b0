"""The simulator's asset universe: which symbols trade, and each one's trading rules.

A default list of common US equities and ETFs and a few crypto pairs; ``--symbols`` (a comma
list, or ``@FILE`` with one symbol per line, ``#`` comments allowed) replaces it. Symbols
outside the universe are refused as Alpaca refuses them. The flags on real tickers are the
simulator's (plausible, not Alpaca's live data): a few equities are not fractionable or hard
to borrow, so a bot meets those refusals offline too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

__all__ = ["DEFAULT_UNIVERSE", "Asset", "AssetUniverse", "asset_id_for", "load_symbols"]

_EQUITIES = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOG",
    "GOOGL",
    "META",
    "TSLA",
    "AMD",
    "INTC",
    "ORCL",
    "NFLX",
    "AVGO",
    "CRM",
    "ADBE",
    "CSCO",
    "QCOM",
    "IBM",
    "JPM",
    "BAC",
    "WFC",
    "GS",
    "MS",
    "V",
    "MA",
    "PYPL",
    "XYZ",
    "COIN",
    "UBER",
    "ABNB",
    "PLTR",
    "SHOP",
    "DIS",
    "KO",
    "PEP",
    "WMT",
    "COST",
    "HD",
    "MCD",
    "NKE",
    "SBUX",
    "PG",
    "JNJ",
    "PFE",
    "MRK",
    "ABBV",
    "UNH",
    "LLY",
    "XOM",
    "CVX",
    "BA",
    "CAT",
    "GE",
    "F",
    "GM",
    "T",
    "VZ",
    "BRK.B",
    "SPY",
    "QQQ",
    "IWM",
    "DIA",
    "VOO",
]
# Simulated exceptions to "fractionable, shortable, easy to borrow".
_NOT_FRACTIONABLE = frozenset({"GME", "AMC"})
_HARD_TO_BORROW = frozenset({"GME", "AMC"})
_CRYPTO = {
    # pair: (min_order_size, min_trade_increment, price_increment)
    "BTC/USD": ("0.0001", "0.000000001", "1"),
    "ETH/USD": ("0.001", "0.000000001", "0.1"),
    "SOL/USD": ("0.01", "0.000000001", "0.01"),
    "DOGE/USD": ("1", "0.000000001", "0.00001"),
}


def asset_id_for(symbol: str) -> str:
    """A stable asset UUID per symbol."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fillguard/asset/{symbol}"))


@dataclass(frozen=True, slots=True)
class Asset:
    """One tradable asset and its rules."""

    symbol: str
    asset_class: str = "us_equity"  # or "crypto"
    exchange: str = "NASDAQ"
    fractionable: bool = True
    shortable: bool = True
    easy_to_borrow: bool = True
    min_order_size: Decimal | None = None
    min_trade_increment: Decimal | None = None
    price_increment: Decimal | None = None

    @property
    def id(self) -> str:
        """The asset's UUID."""
        return asset_id_for(self.symbol)

    @property
    def is_crypto(self) -> bool:
        """Crypto trades 24/7, gtc/ioc only, never short."""
        return self.asset_class == "crypto"

    @property
    def position_symbol(self) -> str:
        """How positions name it: ``BTCUSD`` for ``BTC/USD``."""
        return self.symbol.replace("/", "")


def _equity(symbol: str) -> Asset:
    exchange = "ARCA" if symbol in ("SPY", "QQQ", "IWM", "DIA", "VOO") else "NASDAQ"
    if symbol in ("BRK.B", "JPM", "BAC", "WFC", "GS", "MS", "V", "MA", "DIS", "KO", "XOM"):
        exchange = "NYSE"
    return Asset(
        symbol,
        exchange=exchange,
        fractionable=symbol not in _NOT_FRACTIONABLE,
        easy_to_borrow=symbol not in _HARD_TO_BORROW,
    )


def _crypto(symbol: str) -> Asset:
    size, increment, tick = _CRYPTO[symbol]
    return Asset(
        symbol,
        asset_class="crypto",
        exchange="CRYPTO",
        shortable=False,
        easy_to_borrow=False,
        min_order_size=Decimal(size),
        min_trade_increment=Decimal(increment),
        price_increment=Decimal(tick),
    )


def _asset(symbol: str) -> Asset:
    if "/" in symbol:
        if symbol in _CRYPTO:
            return _crypto(symbol)
        # Another pair: plausible crypto rules.
        return Asset(
            symbol,
            asset_class="crypto",
            exchange="CRYPTO",
            shortable=False,
            easy_to_borrow=False,
            min_order_size=Decimal("0.000000001"),
            min_trade_increment=Decimal("0.000000001"),
            price_increment=Decimal("0.000000001"),
        )
    return _equity(symbol)


@dataclass(frozen=True, slots=True)
class AssetUniverse:
    """The symbols the simulator trades; :meth:`find` also takes ``BTCUSD`` for ``BTC/USD``."""

    assets: tuple[Asset, ...]
    _by_symbol: dict[str, Asset] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        index: dict[str, Asset] = {}
        for asset in self.assets:
            index[asset.symbol] = asset
            index[asset.position_symbol] = asset
            index[asset.id] = asset
        object.__setattr__(self, "_by_symbol", index)

    @classmethod
    def of(cls, symbols: Iterable[str]) -> AssetUniverse:
        """A universe of ``symbols`` (upper-cased; ``/`` marks a crypto pair)."""
        seen: dict[str, Asset] = {}
        for raw in symbols:
            symbol = raw.strip().upper()
            if symbol and symbol not in seen:
                seen[symbol] = _asset(symbol)
        if not seen:
            raise ValueError("the asset universe needs at least one symbol")
        return cls(tuple(seen.values()))

    def find(self, symbol_or_id: str) -> Asset | None:
        """The asset for a symbol, a position symbol (``BTCUSD``) or an asset id; else None."""
        return self._by_symbol.get(symbol_or_id) or self._by_symbol.get(symbol_or_id.upper())


def load_symbols(spec: str) -> AssetUniverse:
    """``--symbols``: ``AAPL,MSFT,BTC/USD`` or ``@path`` (one symbol per line, ``#`` comments)."""
    if spec.startswith("@"):
        lines = Path(spec[1:]).read_text(encoding="utf-8").splitlines()
        symbols = [line.split("#", 1)[0].strip() for line in lines]
    else:
        symbols = spec.split(",")
    return AssetUniverse.of(s for s in symbols if s)


DEFAULT_UNIVERSE = AssetUniverse.of([*_EQUITIES, "GME", "AMC", *_CRYPTO])
