#!/usr/bin/env python3
"""One-command set-up and tasks for fillguard; needs only python3.

    python3 dev.py demo [ARGS...]   # set up, then run `fillguard demo` on the embedded simulator
    python3 dev.py test [ARGS...]   # set up, then ruff, mypy and the whole test suite
    python3 dev.py setup            # only create .venv and install fillguard with its dev tools
    python3 dev.py run ARGS...      # run `fillguard ARGS...` inside the venv
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".fillguard-installed"


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


def main(argv: list[str]) -> int:
    task, args = (argv[0], argv[1:]) if argv else ("test", [])
    setup()
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
