"""What ``fillguard sim`` decides before serving: which keys it accepts and from where, the
control token, and that the simulator's own log reaches the terminal.

A secret on the command line is visible to every local user in ``ps``: the secret may come
from a file (``--secret-file``) or the environment (``FILLGUARD_SIM_SECRET``) instead. Users
keep their real keys in ``APCA_API_*``; the simulator still accepts them from there (a bot
configured for Alpaca then works unchanged), but says at start that it did, never the secret.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fillguard.logs import redact
from fillguard.sim.control import CONTROL_TOKEN_ENV

__all__ = [
    "KEY_ENV",
    "SECRET_ENV",
    "ResolvedKeys",
    "control_token_from_env",
    "resolve_keys",
    "show_sim_log",
]

KEY_ENV = "FILLGUARD_SIM_KEY"
SECRET_ENV = "FILLGUARD_SIM_SECRET"


@dataclass(frozen=True)
class ResolvedKeys:
    """The key pair the simulator accepts, and where each half came from (for the banner)."""

    key_id: str
    secret_key: str
    key_source: str
    secret_source: str


def _first(*candidates: tuple[str | None, str]) -> tuple[str, str] | None:
    for value, source in candidates:
        if value:
            return value, source
    return None


def resolve_keys(
    key: str | None,
    secret: str | None,
    secret_file: Path | None,
    *,
    default_key: str,
    default_secret: str,
    environ: dict[str, str] | None = None,
) -> ResolvedKeys:
    """Keys from the options, then ``FILLGUARD_SIM_*``, then ``APCA_API_*``, then the default pair.

    Raises ``ValueError`` when more than one of ``--secret`` and ``--secret-file`` is given, or
    the file is empty.
    """
    env = os.environ if environ is None else environ
    if secret is not None and secret_file is not None:
        raise ValueError("give --secret or --secret-file, not both")
    file_secret = None
    if secret_file is not None:
        file_secret = secret_file.read_text().strip()
        if not file_secret:
            raise ValueError(f"{secret_file} is empty")
    key_found = _first(
        (key, "--key"),
        (env.get(KEY_ENV), f"{KEY_ENV} in the environment"),
        (env.get("APCA_API_KEY_ID"), "APCA_API_KEY_ID in the environment"),
    ) or (default_key, "the public default pair")
    secret_found = _first(
        (secret, "--secret (visible in ps: prefer --secret-file or the environment)"),
        (file_secret, f"--secret-file {secret_file}"),
        (env.get(SECRET_ENV), f"{SECRET_ENV} in the environment"),
        (env.get("APCA_API_SECRET_KEY"), "APCA_API_SECRET_KEY in the environment"),
    ) or (default_secret, "the public default pair")
    return ResolvedKeys(key_found[0], secret_found[0], key_found[1], secret_found[1])


def control_token_from_env(environ: dict[str, str] | None = None) -> str | None:
    """A control token fixed by ``FILLGUARD_SIM_CONTROL_TOKEN`` (scripts), or None: mint one."""
    env = os.environ if environ is None else environ
    return env.get(CONTROL_TOKEN_ENV) or None


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def show_sim_log(stream: TextIO | None = None) -> logging.Handler:
    """Send the simulator's warnings and errors (with tracebacks) to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("fillguard.sim")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.WARNING or logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return handler
