"""``fillguard ops``: print the shipped Prometheus alert rules and Grafana dashboard."""

from __future__ import annotations

import click

__all__ = ["ops_group"]


@click.group("ops")
def ops_group() -> None:
    """Operations files: Prometheus alert rules and a Grafana dashboard (see docs/operations.md)."""


@ops_group.command("alerts")
@click.option(
    "--runbook-base",
    default=None,
    metavar="URL",
    help="Where your copy of docs/operations.md lives; replaces it in every runbook_url.",
)
def alerts_command(runbook_base: str | None) -> None:
    """Print the Prometheus rule file (save it and list it under rule_files)."""
    from fillguard.ops import alert_rules_text

    try:
        text = alert_rules_text(runbook_base)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--runbook-base") from None
    click.echo(text, nl=False)


@ops_group.command("dashboard")
def dashboard_command() -> None:
    """Print the Grafana dashboard JSON (import it; it asks for a Prometheus data source)."""
    from fillguard.ops import dashboard_text

    click.echo(dashboard_text(), nl=False)
