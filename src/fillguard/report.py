"""Pictures of a run: a terminal histogram of detection latencies and a self-contained HTML page.

Pure renderers over plain values; nothing here reads a clock, a file or the network.
:func:`latency_buckets` puts latencies into log-spaced buckets with round edges (1-2-5 per
decade: 1 ms, 2 ms, 5 ms, 10 ms, ...); :func:`terminal_histogram` draws them as text bars and
:func:`html_report` draws them, the outcome counts and the request mix as inline SVG, with every
figure also written as text. The page needs no network and no JavaScript.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

__all__ = [
    "LatencyBucket",
    "ReportSummary",
    "format_seconds",
    "html_report",
    "latency_buckets",
    "terminal_histogram",
]

_STEPS = (1.0, 2.0, 5.0)
_FLOOR_SECONDS = 1e-6  # latencies below 1 µs (0 included) go to the first bucket
_BLOCKS = " ▏▎▍▌▋▊▉█"


@dataclass(frozen=True, slots=True)
class LatencyBucket:
    """Latencies ``low <= x < high`` (the last bucket also holds ``x == high``)."""

    low: float
    high: float
    count: int


class ReportSummary(TypedDict, total=False):
    """What :func:`html_report` draws. Only ``latencies_seconds`` is required.

    ``figures``: headline values in display order, e.g. ``{"orders": 200, "p99": "1.2 s"}``.
    """

    title: str
    latencies_seconds: Sequence[float]
    outcomes: Mapping[str, int]
    request_mix: Mapping[str, int]
    figures: Mapping[str, object]


def _checked(latencies: Iterable[float]) -> list[float]:
    values: list[float] = []
    for i, value in enumerate(latencies):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"latencies[{i}] must be a number of seconds, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"latencies[{i}] must be finite and >= 0, got {value!r}")
        values.append(float(value))
    return values


def _edge_at_or_below(x: float) -> float:
    """The largest 1-2-5 edge <= ``x``."""
    exponent = math.floor(math.log10(x))
    for step in reversed(_STEPS):
        edge = step * 10.0**exponent
        if edge <= x * (1 + 1e-12):
            return edge
    return 5.0 * 10.0 ** (exponent - 1)  # pragma: no cover - log10 rounding guard


def _next_edge(edge: float) -> float:
    exponent = math.floor(math.log10(edge) + 1e-9)
    mantissa = round(edge / 10.0**exponent)
    if mantissa == 1:
        return 2.0 * 10.0**exponent
    if mantissa == 2:
        return 5.0 * 10.0**exponent
    return 10.0 ** (exponent + 1)


def latency_buckets(latencies: Iterable[float]) -> list[LatencyBucket]:
    """Log-spaced buckets with 1-2-5 edges from the smallest to the largest latency.

    Empty input gives no buckets; counts always add up to the number of latencies.
    """
    values = _checked(latencies)
    if not values:
        return []
    positive = [v for v in values if v >= _FLOOR_SECONDS]
    low = _edge_at_or_below(min(positive)) if positive else _FLOOR_SECONDS
    top = max(*values, low)
    edges = [low]
    while edges[-1] <= top * (1 - 1e-12):
        edges.append(_next_edge(edges[-1]))
    if len(edges) == 1:
        edges.append(_next_edge(low))
    if len(positive) < len(values):
        edges[0] = 0.0  # zero (or sub-µs) latencies go to the first bucket, which starts at 0
    counts = [0] * (len(edges) - 1)
    for value in values:
        index = 0
        # A few dozen buckets at most: a linear scan is simpler than bisect with the edge rules.
        while index < len(counts) - 1 and value >= edges[index + 1]:
            index += 1
        counts[index] += 1
    return [LatencyBucket(edges[i], edges[i + 1], counts[i]) for i in range(len(counts))]


def format_seconds(seconds: float) -> str:
    """A duration for people: ``0 s``, ``850 µs``, ``12 ms``, ``1.5 s``, ``2 min``."""
    if seconds == 0:
        return "0 s"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min"


def _bar(count: int, most: int, width: int) -> str:
    if count == 0 or most == 0:
        return ""
    eighths = max(1, round(count / most * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[rest] if rest else "")


def terminal_histogram(latencies: Iterable[float], width: int = 40) -> str:
    """A text histogram, one line per bucket: ``  10 ms -   20 ms │█████▌   │   12``.

    ``width``: characters of the longest bar. Returns ``"(no latencies)"`` for no input.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    buckets = latency_buckets(latencies)
    if not buckets:
        return "(no latencies)"
    most = max(b.count for b in buckets)
    lows = [format_seconds(b.low) for b in buckets]
    highs = [format_seconds(b.high) for b in buckets]
    low_w = max(map(len, lows))
    high_w = max(map(len, highs))
    count_w = max(len(str(b.count)) for b in buckets)
    lines = []
    for bucket, low, high in zip(buckets, lows, highs, strict=True):
        bar = _bar(bucket.count, most, width)
        lines.append(
            f"{low:>{low_w}} - {high:>{high_w}} │{bar:<{width}}│ {bucket.count:>{count_w}}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- HTML
_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: 2px 12px 2px 0; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
svg rect.bar { fill: #3b6fb6; } svg rect.warn { fill: #c0392b; }
"""
_BAD_OUTCOMES = frozenset({"timeout", "unknown", "rejected", "not_placed", "refused"})


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _counts(name: str, value: object) -> list[tuple[str, int]]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping of name to count, got {value!r}")
    rows = []
    for key, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name}[{key!r}] must be an integer >= 0, got {count!r}")
        rows.append((str(key), count))
    return rows


def _histogram_svg(buckets: Sequence[LatencyBucket]) -> str:
    bar_w, gap, chart_h, label_h = 44, 6, 160, 34
    width = max(1, len(buckets)) * (bar_w + gap) + gap
    most = max((b.count for b in buckets), default=0) or 1
    parts = [
        f'<svg role="img" aria-label="detection latency histogram" width="{width}" '
        f'height="{chart_h + label_h + 18}" viewBox="0 0 {width} {chart_h + label_h + 18}">'
    ]
    for i, b in enumerate(buckets):
        x = gap + i * (bar_w + gap)
        h = round(b.count / most * chart_h)
        y = 16 + chart_h - h
        parts.append(
            f'<rect class="bar" x="{x}" y="{y}" width="{bar_w}" height="{h}">'
            f"<title>{_e(format_seconds(b.low))} to {_e(format_seconds(b.high))}: {b.count}</title>"
            "</rect>"
        )
        parts.append(f'<text x="{x + bar_w / 2}" y="{y - 3}" text-anchor="middle">{b.count}</text>')
        parts.append(
            f'<text x="{x + bar_w / 2}" y="{16 + chart_h + 14}" text-anchor="middle">'
            f"{_e(format_seconds(b.low))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(label: str, rows: Sequence[tuple[str, int]]) -> str:
    row_h, name_w, bar_w = 22, 170, 360
    most = max((c for _, c in rows), default=0) or 1
    height = max(1, len(rows)) * row_h + 4
    parts = [
        f'<svg role="img" aria-label="{_e(label)}" width="{name_w + bar_w + 70}" '
        f'height="{height}" viewBox="0 0 {name_w + bar_w + 70} {height}">'
    ]
    for i, (name, count) in enumerate(rows):
        y = 2 + i * row_h
        w = round(count / most * bar_w)
        css = "warn" if name in _BAD_OUTCOMES and count else "bar"
        parts.append(f'<text x="{name_w - 8}" y="{y + 15}" text-anchor="end">{_e(name)}</text>')
        parts.append(f'<rect class="{css}" x="{name_w}" y="{y + 3}" width="{w}" height="{row_h - 6}"/>')
        parts.append(f'<text x="{name_w + w + 6}" y="{y + 15}">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _count_table(css: str, heading: str, rows: Sequence[tuple[str, int]]) -> str:
    total = sum(c for _, c in rows)
    body = "".join(
        f'<tr><td>{_e(name)}</td><td class="n">{count}</td>'
        f'<td class="n">{(count / total if total else 0):.1%}</td></tr>'
        for name, count in rows
    )
    return (
        f'<table class="{css}"><tr><th>{_e(heading)}</th><th class="n">count</th>'
        f'<th class="n">share</th></tr>{body}'
        f'<tr><th>total</th><th class="n">{total}</th><th></th></tr></table>'
    )


def html_report(summary: ReportSummary | Mapping[str, object]) -> str:
    """One self-contained HTML page (inline CSS and SVG, no script, no external URL).

    Sections: headline figures, the detection latency histogram (with a table of its buckets),
    outcome counts and the request mix, each drawn and written out as numbers.
    """
    title = str(summary.get("title", "fillguard run report"))
    latencies = summary.get("latencies_seconds", ())
    if not isinstance(latencies, Iterable) or isinstance(latencies, str | bytes):
        raise ValueError(f"latencies_seconds must be a list of seconds, got {latencies!r}")
    buckets = latency_buckets(latencies)
    outcomes = _counts("outcomes", summary.get("outcomes"))
    mix = _counts("request_mix", summary.get("request_mix"))
    figures = summary.get("figures") or {}
    if not isinstance(figures, Mapping):
        raise ValueError(f"figures must be a mapping of name to value, got {figures!r}")

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if figures:
        out.append('<h2>Summary</h2><table class="figures">')
        out.extend(
            f'<tr><th>{_e(name)}</th><td class="n">{_e(value)}</td></tr>'
            for name, value in figures.items()
        )
        out.append("</table>")
    count = sum(b.count for b in buckets)
    out.append(f'<h2>Detection latency <span class="count">({count} monitors)</span></h2>')
    if buckets:
        out.append(_histogram_svg(buckets))
        out.append('<table class="latency"><tr><th>from</th><th>to</th><th class="n">count</th></tr>')
        out.extend(
            f"<tr><td>{_e(format_seconds(b.low))}</td><td>{_e(format_seconds(b.high))}</td>"
            f'<td class="n">{b.count}</td></tr>'
            for b in buckets
        )
        out.append("</table>")
    else:
        out.append("<p>No latencies recorded.</p>")
    for css, heading, rows in (("outcomes", "Outcomes", outcomes), ("requests", "Request mix", mix)):
        out.append(f"<h2>{heading}</h2>")
        if rows:
            out.append(_bars_svg(heading, rows))
            out.append(_count_table(css, "outcome" if css == "outcomes" else "request", rows))
        else:
            out.append("<p>None recorded.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
