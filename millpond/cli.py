"""``millpond``: one command line for every stage and the local services."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, NoReturn

import click

from millpond import faults, logs
from millpond import settings as settings_mod
from millpond.errors import MillpondError


def _settings(ctx: click.Context) -> settings_mod.Settings:
    cfg: settings_mod.Settings = ctx.obj
    return cfg


def _echo(payload: Any) -> None:
    click.echo(json.dumps(payload, default=str, indent=2, sort_keys=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Millpond: MongoDB + Kafka → dlt → DuckDB → SQLMesh → Soda → serving."""
    cfg = settings_mod.load()
    logs.configure(cfg.log_format, cfg.log_level)
    faults.arm(cfg.crash_after)
    ctx.obj = cfg


# -- local services ----------------------------------------------------------------------
@cli.group()
def services() -> None:
    """Genuine local mongod (replica set) and Kafka-protocol broker under the data dir."""


@services.command("up")
@click.pass_context
def services_up(ctx: click.Context) -> None:
    """Start the services (no-op for those already running) and wait until healthy."""
    from millpond.services import start_services

    _echo(start_services(_settings(ctx)))


@services.command("down")
@click.pass_context
def services_down(ctx: click.Context) -> None:
    """Stop the services this data dir started."""
    from millpond.services import stop_services

    _echo(stop_services(_settings(ctx)))


@services.command("status")
@click.pass_context
def services_status(ctx: click.Context) -> None:
    """Show whether each service runs; exit 1 when one does not."""
    from millpond.services import service_status

    state = service_status(_settings(ctx))
    _echo(state)
    if not all(state.values()):
        sys.exit(1)


# -- generator ---------------------------------------------------------------------------
@cli.command()
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--customers", default=200, show_default=True, type=int)
@click.option("--products", default=40, show_default=True, type=int)
@click.option("--orders-per-day", default=60, show_default=True, type=int)
@click.option("--sessions-per-day", default=40, show_default=True, type=int, help="browsing sessions without order")
@click.option("--days", default=14, show_default=True, type=int, help="days of history in the first step")
@click.option("--end-date", type=click.DateTime(["%Y-%m-%d"]), help="last day to generate [default: yesterday]")
@click.option("--increment", is_flag=True, help="continue one day after the last generated day")
@click.pass_context
def generate(ctx: click.Context, end_date: datetime | None, increment: bool, **knobs: int) -> None:
    """Fill MongoDB and Kafka with a deterministic online shop (idempotent per end date)."""
    from millpond.generator import GeneratorConfig, generate_shop

    day = end_date.date() if end_date else None
    result = generate_shop(_settings(ctx), GeneratorConfig(**knobs), day, increment=increment)
    _echo(result.summary())


# -- stages ------------------------------------------------------------------------------
@cli.command()
@click.option("--follow", is_flag=True, help="keep loading Kafka every --interval seconds (long-running)")
@click.option("--interval", default=10.0, show_default=True, type=float)
@click.pass_context
def ingest(ctx: click.Context, follow: bool, interval: float) -> None:
    """Load MongoDB and Kafka into the warehouse's bronze dataset (incremental, idempotent)."""
    from millpond.stages.ingest import follow as follow_kafka
    from millpond.stages.ingest import run_ingest

    if follow:
        follow_kafka(_settings(ctx), interval_s=interval)
        return
    report = run_ingest(_settings(ctx))
    _echo({"rows": report.rows, "dead_letters": report.dead_letters, "seconds": report.seconds})


@cli.command()
@click.pass_context
def transform(ctx: click.Context) -> None:
    """Apply the SQLMesh project to prod and restate intervals touched by new bronze data."""
    from millpond.stages.transform import run_transform

    report = run_transform(_settings(ctx))
    _echo(report.__dict__)


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Verify the Soda data contracts on the gold tables; exit 1 when one fails."""
    from millpond.stages.check import run_checks

    _echo(run_checks(_settings(ctx)).as_dict())


@cli.command()
@click.pass_context
def publish(ctx: click.Context) -> None:
    """Copy gold to the serving database (atomic swap)."""
    from millpond.stages.publish import run_publish

    results = run_publish(_settings(ctx))
    _echo([{"target": result.target, "tables": result.tables} for result in results])


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """ingest → transform → check → publish; stops at the first failure (non-zero exit)."""
    from millpond.stages.run import run_all

    report = run_all(_settings(ctx))
    _echo({"run_id": report.run_id, "stages": list(report.stages)})


@cli.command()
@click.option("--heartbeat", help="also require this heartbeat (e.g. ingest-follow) to exist")
@click.option("--max-age", type=float, help="seconds; with --heartbeat, fail when the last beat is older")
@click.pass_context
def health(ctx: click.Context, heartbeat: str | None, max_age: float | None) -> None:
    """Container/Kubernetes probe: data dir writable and, optionally, a fresh heartbeat; exit 1 if not."""
    from millpond.health import check_health

    report = check_health(_settings(ctx).data_dir, heartbeat, max_age)
    _echo(report.as_dict())
    if not report.ok:
        sys.exit(1)


# -- serving -----------------------------------------------------------------------------
@cli.command()
@click.option("--stop", is_flag=True, help="stop the Superset server")
@click.pass_context
def serve(ctx: click.Context, stop: bool) -> None:
    """Bootstrap Superset (idempotent) and serve the dashboards on 127.0.0.1."""
    from millpond.superset import server

    cfg = _settings(ctx)
    if stop:
        _echo({"superset": "stopped" if server.stop(cfg) else "not running"})
        return
    url = server.serve(cfg)
    click.echo(f"Superset is serving the Millpond dashboards at {url} (user: {cfg.superset_admin_user})")


def main() -> None:
    """Entry point: errors become one clear line on stderr and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MillpondError as exc:
        _fail(exc)
    except OSError as exc:  # a path the settings name cannot be created, read or written
        _fail(
            MillpondError(
                f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
                stage="io",
                hint="check the path and its permissions (MILLPOND_DATA_DIR and the paths in docs/configuration.md)",
            )
        )


def _fail(exc: MillpondError) -> NoReturn:
    logs.get("millpond").error("command.failed", stage=exc.stage, error=str(exc))
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)
