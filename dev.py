#!/usr/bin/env python3
"""One-command set-up and tasks for fillguard; needs only python3.

    python3 dev.py demo [ARGS...]   # set up, then run `fillguard demo` on the embedded simulator
    python3 dev.py test [ARGS...]   # set up, then ruff, mypy and the whole test suite
    python3 dev.py setup            # only create .venv and install fillguard with its dev tools
    python3 dev.py run ARGS...      # run `fillguard ARGS...` inside the venv
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".fillguard-installed"
PROMTOOL_STAMP = VENV / ".fillguard-promtool-tried"


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def setup() -> None:
    """Create .venv and install the package with its dev extras (skipped when up to date)."""
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.touch()


def _apt_install(package: str, env: dict[str, str]) -> bool:
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", package]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env, check=False).returncode == 0


def ensure_promtool() -> None:
    """Install promtool and the Prometheus server (Debian, as root) for the alert rule tests.

    Debian 13 ships ``promtool`` as its own package; Debian 12 has it inside ``prometheus``,
    which also brings the server the Prometheus integration test runs. Never fails the set-up:
    when it cannot install, it says why and those tests are reported as skipped.
    """
    if shutil.which("promtool") and shutil.which("prometheus"):
        return
    if PROMTOOL_STAMP.exists():
        return  # tried once already; do not run apt-get on every task
    why = None
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        why = "not a Debian system with apt-get"
    elif not hasattr(os, "geteuid") or os.geteuid() != 0:
        why = "not root (run: sudo apt-get install prometheus)"
    if why is not None:
        print(f"promtool/prometheus not installed ({why}); the alert rule tests will be skipped")
        PROMTOOL_STAMP.touch()
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    updated = False
    for package in ("promtool", "prometheus"):
        if shutil.which("promtool") and shutil.which("prometheus"):
            break
        if not _apt_install(package, env) and not updated:
            # The package lists may be missing or stale (a fresh container): update once, retry.
            print("+ apt-get update", flush=True)
            updated = subprocess.run(["apt-get", "update"], env=env, check=False).returncode == 0
            if updated:
                _apt_install(package, env)
    missing = [tool for tool in ("promtool", "prometheus") if shutil.which(tool) is None]
    if missing:
        print(f"could not install {' and '.join(missing)}; the tests that need them will be skipped")
    else:
        print(
            "installed promtool and prometheus; on a machine with systemd the Debian package may "
            "also start a prometheus service (systemctl disable --now prometheus to stop it)"
        )
    PROMTOOL_STAMP.touch()


def main(argv: list[str]) -> int:
    task, args = (argv[0], argv[1:]) if argv else ("test", [])
    setup()
    if task in ("setup", "test"):
        ensure_promtool()
    try:
        if task == "setup":
            return 0
        if task == "demo":
            _run(BIN / "fillguard", "demo", *args)
        elif task == "run":
            _run(BIN / "fillguard", *args)
        elif task == "test":
            _run(BIN / "ruff", "check", "src", "tests", "benchmarks")
            _run(BIN / "mypy")
            _run(BIN / "python", "-m", "pytest", *args)
        else:
            print(__doc__)
            return 2
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
