"""Operations files shipped in the package: Prometheus alert rules and a Grafana dashboard.

``alerts.yml`` is a Prometheus rule file (tested with ``promtool test rules``); its
``runbook_url`` annotations point at sections of ``docs/operations.md``. ``dashboard.json`` is a
Grafana dashboard to import (it asks for a Prometheus data source, ``DS_PROMETHEUS``).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = [
    "ALERTS_FILE",
    "DASHBOARD_FILE",
    "RUNBOOK_PREFIX",
    "alert_rules_text",
    "dashboard_json",
    "dashboard_text",
]

ALERTS_FILE = "alerts.yml"
DASHBOARD_FILE = "dashboard.json"
#: What every ``runbook_url`` in the shipped rules starts with (before ``#anchor``).
RUNBOOK_PREFIX = "docs/operations.md"


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def alert_rules_text(runbook_base: str | None = None) -> str:
    """The Prometheus rule file as text.

    ``runbook_base``: where your copy of the operations guide lives (e.g.
    ``https://wiki.example/fillguard/operations.html``); it replaces ``docs/operations.md`` in
    every ``runbook_url``, keeping the ``#anchor``.
    """
    text = _read(ALERTS_FILE)
    if runbook_base is None:
        return text
    if not runbook_base or any(c in runbook_base for c in "\"\n\r#"):
        raise ValueError(
            f"runbook_base must be a non-empty URL without quotes, '#' or newlines, got {runbook_base!r}"
        )
    return text.replace(f'runbook_url: "{RUNBOOK_PREFIX}#', f'runbook_url: "{runbook_base}#')


def dashboard_text() -> str:
    """The Grafana dashboard as JSON text."""
    return _read(DASHBOARD_FILE)


def dashboard_json() -> dict[str, Any]:
    """The Grafana dashboard, parsed."""
    data: dict[str, Any] = json.loads(dashboard_text())
    return data
