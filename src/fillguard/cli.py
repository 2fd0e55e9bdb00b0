"""The ``fillguard`` command line: a click group; each command is registered with ``main``.

``fillguard sim`` runs the Alpaca-compatible paper broker simulator on loopback until Ctrl-C.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from fillguard.sim.server import SimServer

__all__ = ["main", "sim_command"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fillguard")
def main() -> None:
    """fillguard: trustworthy order execution and fill detection on Alpaca."""


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="0: any free port.",
)
@click.option(
    "--faults",
    type=click.Choice(["calm", "rough", "hostile"]),
    default="calm",
    show_default=True,
    help="Fault profile.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for prices and faults.")
@click.option(
    "--key",
    default=None,
    help="API key id to accept [env FILLGUARD_SIM_KEY, then APCA_API_KEY_ID; default pair].",
)
@click.option(
    "--secret",
    default=None,
    help="API secret to accept. Visible to every local user in ps: prefer --secret-file or "
    "env FILLGUARD_SIM_SECRET (then APCA_API_SECRET_KEY; default pair).",
)
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the API secret to accept from this file (first line).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Requests per minute before 429 (0: off).",
)
@click.option(
    "--clock",
    "clock",
    default="real",
    show_default=True,
    help="Market clock: real (New York sessions), open (never closes), accelerated:N[@ISO] "
    "(N times faster, from now or ISO) or fixed:ISO (the wall clock stands still).",
)
@click.option(
    "--symbols",
    default=None,
    help="Tradable symbols: AAPL,MSFT,BTC/USD or @FILE (one per line) [default: a built-in "
    "list of common US equities and crypto pairs].",
)
def sim_command(
    host: str,
    port: int,
    faults: str,
    seed: int,
    key: str | None,
    secret: str | None,
    secret_file: Path | None,
    rate_limit: int,
    clock: str,
    symbols: str | None,
) -> None:
    """Run the Alpaca-compatible paper broker simulator (REST and trade_updates) until Ctrl-C.

    Prints the keys it accepts and where they came from (never a secret you gave), and the
    control token every /_sim/ call needs (header X-Fillguard-Sim-Token; fix it with env
    FILLGUARD_SIM_CONTROL_TOKEN). Warnings and errors of the simulator go to stderr.
    """
    from rich.console import Console

    from fillguard.logs import register_secret
    from fillguard.sim.launch import control_token_from_env, resolve_keys, show_sim_log
    from fillguard.sim.server import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, SimServer

    try:
        keys = resolve_keys(
            key,
            secret,
            secret_file,
            default_key=DEFAULT_KEY_ID,
            default_secret=DEFAULT_SECRET_KEY,
        )
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    key_id, secret_key = keys.key_id, keys.secret_key
    default_secret = secret_key == DEFAULT_SECRET_KEY
    if not default_secret:
        register_secret(secret_key)
    console = Console(soft_wrap=True, highlight=False)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        server = SimServer(
            host=host,
            port=port,
            faults=faults,
            seed=seed,
            key_id=key_id,
            secret_key=secret_key,
            rate_limit=rate_limit or None,
            clock=clock,
            symbols=symbols,
            control_token=control_token_from_env(),
        )
    except (ValueError, OSError) as exc:
        raise click.BadParameter(str(exc)) from None
    handler = show_sim_log()
    try:
        server.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        _print_banner(
            console,
            server,
            faults=faults,
            seed=seed,
            rate_limit=rate_limit,
            sources=(keys.key_source, keys.secret_source),
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        console.print("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
        logging.getLogger("fillguard.sim").removeHandler(handler)


def _print_banner(
    console: Console,
    server: SimServer,
    *,
    faults: str,
    seed: int,
    rate_limit: int,
    sources: tuple[str, str] = ("--key", "--secret"),
) -> None:
    from rich.markup import escape

    from fillguard.sim.connections import is_loopback
    from fillguard.sim.server import DEFAULT_SECRET_KEY

    default_secret = server.secret_key == DEFAULT_SECRET_KEY
    shown_secret = server.secret_key if default_secret else "<your secret>"
    secret_line = (
        f"{escape(server.secret_key)}  (the public default pair)"
        if default_secret
        else "(the one you gave; not shown)"
    )
    limit = f"{rate_limit}/min" if rate_limit else "off"
    console.print(
        f"[bold]fillguard simulator[/bold]  faults={faults} seed={seed} rate limit={limit}"
    )
    console.print(f"  clock   {escape(server.clock_spec.text)}")
    console.print(f"  REST    {server.base_url}")
    console.print(f"  stream  {server.stream_url}")
    console.print(f"  key id  {escape(server.key_id)}")
    console.print(f"  secret  {secret_line}")
    console.print(f"  keys accepted from: key id {sources[0]}; secret {sources[1]}")
    console.print(
        f"  control token  {escape(server.control_token)}  (header X-Fillguard-Sim-Token, "
        "required on every /_sim/ call)"
    )
    if not is_loopback(server.host):
        console.print(
            f"[yellow]warning: listening on {escape(server.host)}, not only loopback: any host "
            "that can reach this port can trade on this simulator (and, with the control "
            "token, reset it)[/yellow]"
        )
    console.print("\nPoint alpaca-py at it:\n")
    console.print(
        escape(
            f'TradingClient("{server.key_id}", "{shown_secret}", url_override="{server.base_url}")\n'
            f'TradingStream("{server.key_id}", "{shown_secret}", url_override="{server.stream_url}")'
        )
    )
    console.print("\nCtrl-C to stop.")
    sys.stdout.flush()


main.add_command(sim_command)

# Trading commands live in their own module; registered here so `fillguard --help` lists all.
from fillguard.cli_demo import demo_command  # noqa: E402
from fillguard.cli_journal import journal_group  # noqa: E402
from fillguard.cli_ops import ops_group  # noqa: E402
from fillguard.cli_trading import execute_command, recover_command, watch_command  # noqa: E402

main.add_command(demo_command)
main.add_command(execute_command)
main.add_command(watch_command)
main.add_command(recover_command)
main.add_command(journal_group)
main.add_command(ops_group)


if __name__ == "__main__":
    main()
