"""The pytest plugin as a bot author uses it: the README's example test file, run by pytest."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
_EXAMPLE = re.compile(
    r"<!-- pytest-plugin-example:start -->\n```python\n(.*?)```\n<!-- pytest-plugin-example:end -->",
    re.S,
)


def _example() -> str:
    match = _EXAMPLE.search((ROOT / "README.md").read_text())
    assert match is not None, "the README has no pytest plugin example"
    return match.group(1)


def _plugin_installed() -> bool:
    return any(
        ep.value == "fillguard.sim.pytest_plugin"
        for ep in importlib.metadata.entry_points(group="pytest11")
    )


def test_the_entry_point_names_the_plugin_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"fillguard": "fillguard.sim.pytest_plugin"}


def test_the_readme_example_passes_under_pytest(tmp_path: Path) -> None:
    """A fresh pytest process (no conftest of ours) runs the README's test file: all pass."""
    (tmp_path / "test_my_bot.py").write_text(_example())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    # Until the package is reinstalled with the entry point, load the plugin by name.
    load = [] if _plugin_installed() else ["-p", "fillguard.sim.pytest_plugin"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--strict-markers",
            "-p",
            "no:cacheprovider",
            *load,
            "test_my_bot.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout, result.stdout


def test_the_plugin_fixtures_start_nothing_unless_asked(tmp_path: Path) -> None:
    """A test using none of the fixtures starts no simulator (no thread, no port)."""
    (tmp_path / "test_plain.py").write_text(
        "import threading\n\n"
        "def test_plain():\n"
        "    assert not [t for t in threading.enumerate() if t.name.startswith('fillguard-sim')]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    load = [] if _plugin_installed() else ["-p", "fillguard.sim.pytest_plugin"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *load, "test_plain.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
