"""Pieces every benchmark script shares: the machine line and a simulator in its own process."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CONTROL_HEADERS", "machine", "sim_process", "write_section"]

# The simulator's /_sim/ control token, fixed for the benchmark's own simulator process.
_CONTROL_TOKEN = "fillguard-benchmark-control-token"
CONTROL_HEADERS = {"X-Fillguard-Sim-Token": _CONTROL_TOKEN}


def machine() -> str:
    """CPUs, CPU model, Python, alpaca-py and uvicorn versions, OS and load at start."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import alpaca
    import uvicorn

    alpaca_version = getattr(alpaca, "__version__", "?")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}; "
        f"Python {platform.python_version()}, alpaca-py {alpaca_version}, "
        f"uvicorn {uvicorn.__version__}; {platform.system()} {platform.release()}; "
        f"load average at start {load:.2f}"
    )


@contextlib.contextmanager
def sim_process(
    seed: int, faults: str = "calm", *, rate_limit: int = 0
) -> Iterator[tuple[str, int]]:
    """``fillguard sim`` in its own process on a free loopback port (rate limit off unless
    ``rate_limit`` requests per minute are given).

    Yields the base URL and the process id (for its CPU time); the process is stopped on exit.
    """
    script = Path(sys.executable).with_name("fillguard")
    cmd = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from fillguard.cli import main; main()"]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    env["FILLGUARD_SIM_CONTROL_TOKEN"] = _CONTROL_TOKEN
    proc = subprocess.Popen(
        # The market never closes: a benchmark (or the crash test in CI) runs at any hour.
        [
            *cmd,
            *("sim", "--port", "0", "--rate-limit", str(rate_limit), "--seed", str(seed)),
            *("--faults", faults, "--clock", "open"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            m = re.search(r"REST\s+(http://\S+)", line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise RuntimeError("simulator did not start")
        # Drain the rest of its output so the pipe never fills and blocks the server.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def write_section(path: Path, section: str) -> None:
    """Put ``section`` (its first line is its ``## `` heading) into the file at ``path``: in
    place of the section with that heading, up to the next ``## ``, or appended."""
    heading = section.split("\n", 1)[0]
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")
