"""The crash harness, short: 20 SIGKILLs of a real trading process against ``fillguard sim``.

The full run (200 kills) is ``python benchmarks/crash_harness.py --kills 200``; its figures are
in BENCHMARKS.md. Here every crash point is hit at least once, and the three promises hold:
0 orders lost, 0 duplicated, and the drained book equals the broker's positions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "benchmarks" / "crash_harness.py"
POINTS = (
    "intent_recorded",
    "attempt_recorded",
    "post_in_flight",
    "post_answered",
    "outcome_recorded",
    "monitoring",
    "fill_seen",
    "booked",
)


def test_twenty_kills_lose_nothing_duplicate_nothing_and_books_agree() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--kills", "20", "--seed", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        check=False,
    )
    assert proc.stdout, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["kills"] == 20
    hit = {name.split(" ")[0] for name in report["kills_by_point"] if "not reached" not in name}
    assert set(POINTS) <= hit, report["kills_by_point"]
    assert report["orders"] > 0
    assert report["lost"] == 0
    assert report["duplicated"] == 0
    assert report["book_differences"] == {}
    assert report["unresolved_at_end"] == 0
    assert report["ok"] is True
    assert proc.returncode == 0
