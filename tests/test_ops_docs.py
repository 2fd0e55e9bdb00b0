"""docs/operations.md covers every config field, every metric and every alert, and its links hold.

The lists come from the code (the config dataclasses, the metrics registries, the rule file),
so a new field, metric or alert without an entry in the guide fails here.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fillguard
from fillguard.metrics import PrometheusMetrics
from fillguard.sim.metrics import SimMetrics
from tests.ops_support import alert_rules

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of the markdown section ``heading`` (up to the next heading of its level or above)."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.MULTILINE)
    assert match, f"no section {heading!r} in {GUIDE.name}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFKC", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+?)\s*$", text, re.MULTILINE)}


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows keyed by their first cell without backticks."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


# --------------------------------------------------------------------------- configuration


def config_classes() -> list[type[Any]]:
    """Every dataclass named ``*Config`` in fillguard (the simulator's internals excepted)."""
    found: dict[str, type[Any]] = {}
    for info in pkgutil.walk_packages(fillguard.__path__, "fillguard."):
        if info.name.startswith("fillguard.sim"):
            continue  # test infrastructure, not something a deployment configures
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and name.endswith("Config")
                and dataclasses.is_dataclass(obj)
                and obj.__module__ == module.__name__
            ):
                found[f"{obj.__module__}.{name}"] = obj
    return list(found.values())


def default_text(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{field.default!r}`"
    if field.default_factory is not dataclasses.MISSING:
        return f"`{getattr(field.default_factory, '__name__', '?')}()`"
    return "required"


def test_the_known_config_classes_are_found() -> None:
    names = {c.__name__ for c in config_classes()}
    assert {"FillDetectionConfig", "OrderConfig"} <= names


def test_every_config_field_is_documented_with_its_default(guide: str) -> None:
    reference = section(guide, "Configuration reference")
    for cls in config_classes():
        body = section(reference, cls.__name__)
        assert f"{cls.__module__}.{cls.__name__}" in body, f"{cls.__name__}: say where it lives"
        rows = table_rows(body)
        for field in dataclasses.fields(cls):
            assert field.name in rows, f"{cls.__name__}.{field.name} has no row in the guide"
            cells = rows[field.name]
            assert cells[1] == default_text(field), (
                f"{cls.__name__}.{field.name}: the guide says default {cells[1]}, "
                f"the code {default_text(field)}"
            )
            assert len(cells) > 2, f"{cls.__name__}.{field.name}: no meaning column"
            assert cells[2], f"{cls.__name__}.{field.name}: no meaning"
        documented = set(rows) - {"Field"}
        stale = documented - {f.name for f in dataclasses.fields(cls)}
        assert not stale, f"{cls.__name__}: the guide documents fields that do not exist: {stale}"


# --------------------------------------------------------------------------- metrics


def families(registry: Any) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Exported name -> (type, label names) of every metric family in ``registry``."""
    out = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for s in family.samples for k in s.labels if k not in ("le", "quantile")}
        labels |= set(getattr(family, "_labelnames", ()))  # a custom collector's family
        out[name] = (family.type, tuple(sorted(labels)))
    # Label names of families with no child yet are not in the samples: ask the collectors.
    for collector in list(registry._collector_to_names):
        label_names = getattr(collector, "_labelnames", None)
        if label_names:
            name = collector._name + ("_total" if collector._type == "counter" else "")
            out[name] = (out[name][0], tuple(sorted(label_names)))
    return out


def labels_cell(cell: str) -> tuple[str, ...]:
    return tuple(sorted(re.findall(r"`([a-z_]+)`", cell)))


@pytest.mark.parametrize(
    ("heading", "registry_of"),
    [
        ("Metrics reference", lambda: PrometheusMetrics(symbol_labels=True).registry),
        ("Simulator metrics", lambda: SimMetrics().registry),
    ],
)
def test_every_metric_is_documented_with_its_type_and_labels(guide: str, heading: str, registry_of: Callable[[], Any]) -> None:
    rows = table_rows(section(guide, heading))
    for name, (kind, labels) in families(registry_of()).items():
        assert name in rows, f"{name} has no row under {heading!r}"
        cells = rows[name]
        assert cells[1] == kind, f"{name}: the guide says {cells[1]}, the registry {kind}"
        assert labels_cell(cells[2]) == labels, f"{name}: the guide's labels {cells[2]}, the registry's {labels}"
        assert cells[3], f"{name}: no meaning"


def test_every_metric_the_guide_names_exists(guide: str) -> None:
    exported = set(families(PrometheusMetrics(symbol_labels=True).registry))
    exported |= set(families(SimMetrics().registry))
    mentioned = set(re.findall(r"\bfillguard_[a-z_]+", guide))
    series_suffixes = ("_bucket", "_sum", "_count", "_created")
    real = {
        name
        for name in mentioned
        if name in exported
        or any(name.endswith(s) and name.removesuffix(s) in exported for s in series_suffixes)
    }
    assert mentioned - real == set(), f"the guide names metrics that do not exist: {mentioned - real}"


# --------------------------------------------------------------------------- alerts


def test_every_alert_has_a_runbook_section_its_link_points_at(guide: str) -> None:
    targets = anchors(guide)
    alerts = section(guide, "Alerts")
    for rule in alert_rules():
        name = rule["alert"]
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in targets, f"{name}: runbook anchor #{anchor} is not a heading of the guide"
        body = section(alerts, name)
        for part in ("**What it means.**", "**What to check.**", "**What to do.**"):
            assert part in body, f"{name}: its runbook lacks {part}"
        assert f"`{name}`" in section(guide, "Alerts").split("###", 1)[0], f"{name}: not in the table"


def test_every_internal_link_of_the_guide_resolves(guide: str) -> None:
    targets = anchors(guide)
    links = re.findall(r"\]\(#([^)]+)\)", guide)
    assert links
    for link in links:
        assert link in targets, f"link #{link} has no heading"


def test_the_guide_has_the_sections_operators_need(guide: str) -> None:
    for heading in (
        "Troubleshooting",
        "429 Too Many Requests",
        "UNKNOWN outcomes",
        "Position mismatches",
        "The stream will not authenticate",
        "Timeouts",
        "Rollback to the legacy loop",
        "Safe use against live trading (`--live`)",
    ):
        assert section(guide, heading).strip(), heading
    rollback = section(guide, "Rollback to the legacy loop")
    for needle in (
        "OrderConfig(use_fill_detection_engine=False)",
        "FILLGUARD_FILL_DETECTION=legacy",
        "executor.fill_detection_enabled = False",
        "**What changes in behaviour.**",
        "**What changes in metrics.**",
    ):
        assert needle in rollback, needle
