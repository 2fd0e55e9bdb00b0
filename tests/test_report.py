"""report.py: the terminal histogram adds up; the HTML page is self-contained and tells the truth."""

from __future__ import annotations

import itertools
import math
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.report import (
    LatencyBucket,
    ReportSummary,
    format_seconds,
    html_report,
    latency_buckets,
    terminal_histogram,
)

LATENCIES = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(min_value=1e-7, max_value=600, allow_nan=False, allow_infinity=False),
    ),
    max_size=300,
)


def histogram_counts(text: str) -> list[int]:
    return [int(line.rsplit("│", 1)[1]) for line in text.splitlines()]


# --------------------------------------------------------------------------- buckets


@settings(max_examples=150, deadline=None)
@given(latencies=LATENCIES)
def test_every_latency_lands_in_exactly_one_bucket(latencies: list[float]) -> None:
    buckets = latency_buckets(latencies)
    assert sum(b.count for b in buckets) == len(latencies)
    for first, second in itertools.pairwise(buckets):
        assert first.high == second.low  # contiguous
        assert first.low < first.high
    for value in latencies:
        homes = [
            b
            for i, b in enumerate(buckets)
            if b.low <= value < b.high or (i == len(buckets) - 1 and value == b.high)
        ]
        assert len(homes) == 1, (value, buckets)


@settings(max_examples=100, deadline=None)
@given(latencies=LATENCIES.filter(bool), width=st.integers(min_value=1, max_value=80))
def test_terminal_histogram_counts_add_up_and_bars_fit(latencies: list[float], width: int) -> None:
    text = terminal_histogram(latencies, width=width)
    counts = histogram_counts(text)
    assert sum(counts) == len(latencies)
    assert counts == [b.count for b in latency_buckets(latencies)]
    for line in text.splitlines():
        bar = line.split("│")[1]
        assert len(bar) == width
        assert bar.strip() or line.rsplit("│", 1)[1].strip() == "0"  # a non-zero count shows


def test_buckets_are_log_spaced_with_round_edges() -> None:
    buckets = latency_buckets([0.012, 0.013, 0.5, 3.0])
    assert [(b.low, b.high) for b in buckets] == [
        (0.01, 0.02),
        (0.02, 0.05),
        (0.05, 0.1),
        (0.1, 0.2),
        (0.2, 0.5),
        (0.5, 1.0),
        (1.0, 2.0),
        (2.0, 5.0),
    ]
    assert [b.count for b in buckets] == [2, 0, 0, 0, 0, 1, 0, 1]


def test_edge_values_and_zero() -> None:
    assert latency_buckets([]) == []
    assert latency_buckets([0.02]) == [LatencyBucket(0.02, 0.05, 1)]
    assert latency_buckets([1.0, 2.0, 5.0, 10.0])[-1] == LatencyBucket(5.0, 10.0, 2)
    zero_first = latency_buckets([0.0, 0.012])
    assert zero_first[0] == LatencyBucket(0.0, 0.02, 2)


def test_terminal_histogram_reads_well() -> None:
    text = terminal_histogram([0.012, 0.013, 0.015, 0.3], width=10)
    assert text.splitlines() == [
        " 10 ms -  20 ms │██████████│ 3",
        " 20 ms -  50 ms │          │ 0",
        " 50 ms - 100 ms │          │ 0",
        "100 ms - 200 ms │          │ 0",
        "200 ms - 500 ms │███▍      │ 1",
    ]
    assert terminal_histogram([]) == "(no latencies)"


@pytest.mark.parametrize("bad", [[math.nan], [math.inf], [-0.1], ["0.1"], [True], [None]])
def test_bad_latencies_are_refused_naming_the_item(bad: list[Any]) -> None:
    with pytest.raises(ValueError, match=r"latencies\[0\]"):
        terminal_histogram(bad)
    with pytest.raises(ValueError, match=r"latencies\[0\]"):
        html_report({"latencies_seconds": bad})


def test_bad_width_is_refused() -> None:
    for width in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="width"):
            terminal_histogram([0.1], width=width)  # type: ignore[arg-type]


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 0.00085, 0.012, 1.5, 90, 300)] == [
        "0 s",
        "850 µs",
        "12 ms",
        "1.5 s",
        "90 s",
        "5 min",
    ]


# --------------------------------------------------------------------------- HTML


class Page(HTMLParser):
    """Collects tags, attribute values, text and table rows of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attribute_values: list[str] = []
        self.text: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.svg_texts: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_svg_text = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attribute_values.extend(v or "" for _, v in attrs)
        attributes = dict(attrs)
        if tag == "table":
            self._table = attributes.get("class") or "?"
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "text":
            self._in_svg_text = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attribute_values.extend(v or "" for _, v in attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "text":
            self._in_svg_text = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_svg_text:
            self.svg_texts.append(data.strip())


LATENCIES_SECONDS = [0.012, 0.013, 0.015, 0.3, 0.0, 2.5, 0.041]
OUTCOMES = {"filled": 180, "partially_filled": 9, "timeout": 3, "unknown": 1}
REQUEST_MIX = {"submit_order": 200, "get_order": 1650, "get_position": 190}
FIGURES: dict[str, object] = {"orders": 200, "fills missed": 0, "p99 detection": "1.2 s"}
SUMMARY: ReportSummary = {
    "title": "fillguard demo <hostile> & friends",
    "latencies_seconds": LATENCIES_SECONDS,
    "outcomes": OUTCOMES,
    "request_mix": REQUEST_MIX,
    "figures": FIGURES,
}


def parse(page_html: str) -> Page:
    page = Page()
    page.feed(page_html)
    page.close()
    return page


def test_the_page_parses_and_is_self_contained() -> None:
    page_html = html_report(SUMMARY)
    page = parse(page_html)
    assert page_html.startswith("<!DOCTYPE html>")
    assert "script" not in page.tags
    assert "<script" not in page_html.lower()
    assert not re.search(r"(?:https?:)?//[a-z0-9]", page_html, re.IGNORECASE), "an external URL"
    assert not any(re.match(r"(?:https?:|//|data:|javascript:)", v) for v in page.attribute_values)
    for tag in ("link", "img", "iframe", "object", "embed"):
        assert tag not in page.tags
    assert page.tags.count("svg") == 3  # histogram, outcomes, request mix
    assert "title" in page.tags
    assert "style" in page.tags


def test_text_is_escaped() -> None:
    page_html = html_report(SUMMARY)
    assert "<hostile>" not in page_html
    assert "&lt;hostile&gt; &amp; friends" in page_html


def test_the_figures_match_the_input() -> None:
    page = parse(html_report(SUMMARY))
    # Headline figures, in order.
    assert page.tables["figures"] == [[k, str(v)] for k, v in FIGURES.items()]
    # Latency table: one row per bucket, counts as the buckets say, adding up to the input.
    buckets = latency_buckets(LATENCIES_SECONDS)
    latency_rows = page.tables["latency"][1:]
    assert latency_rows == [
        [format_seconds(b.low), format_seconds(b.high), str(b.count)] for b in buckets
    ]
    assert sum(int(r[2]) for r in latency_rows) == len(LATENCIES_SECONDS)
    assert "(7 monitors)" in "".join(page.text)
    # Outcome and request tables: every count and its share, and the total.
    for table, counts in (("outcomes", OUTCOMES), ("requests", REQUEST_MIX)):
        rows = page.tables[table]
        total = sum(counts.values())
        assert rows[1:-1] == [[k, str(v), f"{v / total:.1%}"] for k, v in counts.items()]
        assert rows[-1][:2] == ["total", str(total)]
    # The SVG labels carry the same numbers.
    for name, count in {**OUTCOMES, **REQUEST_MIX}.items():
        assert name in page.svg_texts
        assert str(count) in page.svg_texts
    for bucket in buckets:
        assert str(bucket.count) in page.svg_texts


def test_an_empty_run_still_renders() -> None:
    page = parse(html_report({"latencies_seconds": []}))
    text = "".join(page.text)
    assert "No latencies recorded." in text
    assert "None recorded." in text
    assert "svg" not in page.tags


@pytest.mark.parametrize(
    ("summary", "field"),
    [
        ({"latencies_seconds": "0.1"}, "latencies_seconds"),
        ({"latencies_seconds": [], "outcomes": [1, 2]}, "outcomes"),
        ({"latencies_seconds": [], "outcomes": {"filled": -1}}, r"outcomes\['filled'\]"),
        ({"latencies_seconds": [], "request_mix": {"get": 1.5}}, r"request_mix\['get'\]"),
        ({"latencies_seconds": [], "figures": [("a", 1)]}, "figures"),
    ],
)
def test_bad_summaries_are_refused_naming_the_field(summary: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        html_report(summary)
