"""``millpond``: one command line for every stage and the local services."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, NoReturn

import click

from millpond import faults, logs, memory
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
    memory.map_large_allocations(cfg.malloc_mmap_threshold)
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
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="multiply customers, products, orders and sessions per day")  # fmt: skip
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(min=1),
              help="documents per MongoDB bulk write (bounds memory; never changes the data)")  # fmt: skip
@click.option("--duplicate-rate", default=0.02, show_default=True, type=float, help="chance per event of a copy")
@click.option("--malformed-rate", default=0.005, show_default=True, type=float,
              help="chance per event of a malformed record after it")  # fmt: skip
@click.option("--kafka-poison-rate", default=0.0, show_default=True, type=float,
              help="chance per event of a poison record after it (see --kafka-poison-kinds)")  # fmt: skip
@click.option("--kafka-poison-kinds", default="all", show_default=True,
              help="comma-separated Kafka poison kinds to draw from (see `millpond.generator.poison`)")  # fmt: skip
@click.option("--oversized-bytes", default=1_200_000, show_default=True, type=click.IntRange(min=1),
              help="value size of an oversized poison record")  # fmt: skip
@click.option("--mongo-poison-rate", default=0.0, show_default=True, type=float,
              help="chance per order version of breaking the contract (see --mongo-poison-kinds)")  # fmt: skip
@click.option("--mongo-poison-kinds", default="all", show_default=True,
              help="comma-separated MongoDB poison kinds to draw from (see `millpond.generator.poison`)")  # fmt: skip
@click.option("--delete-rate", default=0.0, show_default=True, type=float,
              help="chance per new order that an earlier order is deleted")  # fmt: skip
@click.pass_context
def generate(
    ctx: click.Context, end_date: datetime | None, increment: bool, scale: float, batch_size: int,
    kafka_poison_kinds: str, mongo_poison_kinds: str, **knobs: Any,
) -> None:  # fmt: skip
    """Fill MongoDB and Kafka with a deterministic online shop (idempotent per end date)."""
    from dataclasses import replace

    from millpond.generator import GeneratorConfig, generate_shop

    def kinds(value: str) -> tuple[str, ...]:
        return tuple(k.strip() for k in value.split(",") if k.strip())

    try:
        config = GeneratorConfig(**knobs).scaled(scale)
        if kafka_poison_kinds != "all":
            config = replace(config, kafka_poison_kinds=kinds(kafka_poison_kinds))
        if mongo_poison_kinds != "all":
            config = replace(config, mongo_poison_kinds=kinds(mongo_poison_kinds))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    day = end_date.date() if end_date else None
    result = generate_shop(_settings(ctx), config, day, increment=increment, batch_size=batch_size)
    _echo(result.summary())


# -- stages ------------------------------------------------------------------------------
# Exit status of `ingest`/`run` with --fail-on-dead-letters when the run quarantined records
# (everything else succeeded and was loaded/published); see docs/pipelines/README.md.
EXIT_DEAD_LETTERS = 3
_FAIL_ON_DEAD_LETTERS = click.option(
    "--fail-on-dead-letters",
    is_flag=True,
    help=f"exit {EXIT_DEAD_LETTERS} (after finishing) when records were quarantined",
)


def _exit_on_dead_letters(fail_on_dead_letters: bool, dead_letters: int) -> None:
    if fail_on_dead_letters and dead_letters:
        click.echo(
            f"{dead_letters} record(s) quarantined in bronze.dead_letter (see docs/runbooks/dead-letters.md)", err=True
        )
        sys.exit(EXIT_DEAD_LETTERS)


@cli.command()
@click.option("--follow", is_flag=True,
              help="keep loading Kafka in micro-batches of MILLPOND_FOLLOW_MAX_BATCHES batches per topic")  # fmt: skip
@click.option("--interval", default=10.0, show_default=True, type=float,
              help="with --follow: seconds to wait after a cycle that caught up")  # fmt: skip
@_FAIL_ON_DEAD_LETTERS
@click.pass_context
def ingest(ctx: click.Context, follow: bool, interval: float, fail_on_dead_letters: bool) -> None:
    """Load MongoDB and Kafka into the warehouse's bronze dataset (incremental, idempotent).

    With --follow: Kafka only, one bounded micro-batch per cycle (a backlog is worked off cycle
    after cycle, without waiting), until SIGTERM/SIGINT, which finish the current micro-batch
    and exit 0.
    """
    from millpond.stages.follow import follow as follow_kafka
    from millpond.stages.ingest import run_ingest

    if follow:
        cycles = follow_kafka(_settings(ctx), interval_s=interval)
        _echo({"follow": "stopped", "cycles": cycles})
        return
    report = run_ingest(_settings(ctx))
    _echo(report.summary())
    _exit_on_dead_letters(fail_on_dead_letters, report.dead_letters)


@cli.command()
@click.pass_context
def transform(ctx: click.Context) -> None:
    """Apply the SQLMesh project to prod and restate intervals touched by new bronze data."""
    from millpond.stages.transform import run_transform

    report = run_transform(_settings(ctx))
    _echo(report.__dict__)


@cli.command()
@click.argument("environment", default="dev")
@click.option("--skip-tests", is_flag=True, help="do not run the SQLMesh unit tests first")
@click.pass_context
def plan(ctx: click.Context, environment: str, skip_tests: bool) -> None:
    """Plan and apply model changes into ENVIRONMENT (default dev), built through today; prod promotes them."""
    from millpond.stages.change_review import plan_environment, summary_dict

    _echo(summary_dict(plan_environment(_settings(ctx), environment, skip_tests=skip_tests)))


@cli.command()
@click.option("--check", is_flag=True, help="exit 1 when docs/lineage.md does not match the models, writing nothing")
@click.pass_context
def lineage(ctx: click.Context, check: bool) -> None:
    """Regenerate the model graph and the gold tables' column lineage in docs/lineage.md from SQLMesh."""
    from millpond.lineage import write

    _echo({"lineage": str(write(_settings(ctx), check=check)), "checked": check})


@cli.command()
@click.option("--check", is_flag=True, help="exit 1 when docs/catalog/ does not match the models, writing nothing")
@click.pass_context
def catalog(ctx: click.Context, check: bool) -> None:
    """Regenerate the data catalog in docs/catalog/: every table and column, type, owner, classification, lineage."""
    from millpond.catalog import write

    _echo(write(_settings(ctx), check=check))


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
    _echo(
        [{"target": result.target, "tables": result.tables, "gold_version": result.gold_version} for result in results]
    )


@cli.command()
@_FAIL_ON_DEAD_LETTERS
@click.pass_context
def run(ctx: click.Context, fail_on_dead_letters: bool) -> None:
    """ingest → transform → check → publish; stops at the first failure (non-zero exit)."""
    from millpond.stages.ingest import IngestReport
    from millpond.stages.run import run_all

    report = run_all(_settings(ctx))
    ingested = report.stages.get("ingest")
    dead_letters = ingested.dead_letters if isinstance(ingested, IngestReport) else 0
    quarantined = ingested.quarantined if isinstance(ingested, IngestReport) else {}
    _echo(
        {
            "run_id": report.run_id,
            "stages": list(report.stages),
            "dead_letters": dead_letters,
            "quarantined": quarantined,
        }
    )
    _exit_on_dead_letters(fail_on_dead_letters, dead_letters)


# -- dead letters and source administration ---------------------------------------------
@cli.group("dead-letters")
def dead_letters() -> None:
    """Records quarantined in bronze.dead_letter: list them, replay Kafka ones after a fix."""


@dead_letters.command("list")
@click.option("--source", type=click.Choice(["kafka", "mongodb"]))
@click.option("--origin", help="topic or collection")
@click.option("--error-class", help="e.g. contract.missing_field")
@click.option("--pending", is_flag=True, help="only those not replayed yet")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def dead_letters_list(
    ctx: click.Context, source: str | None, origin: str | None, error_class: str | None, pending: bool, limit: int
) -> None:
    """List dead letters, newest first (JSON)."""
    from millpond.stages.dead_letters import list_dead_letters

    rows = list_dead_letters(
        _settings(ctx),
        source=source,
        origin=origin,
        error_class=error_class,
        include_replayed=not pending,
        limit=limit,
    )
    _echo(rows)


@dead_letters.command("replay")
@click.option("--origin", help="only the dead letters of this topic")
@click.option("--dry-run", is_flag=True, help="re-validate and report, load nothing")
@click.pass_context
def dead_letters_replay(ctx: click.Context, origin: str | None, dry_run: bool) -> None:
    """Re-validate quarantined Kafka records with the current contracts; load, once, those that pass."""
    from millpond.stages.dead_letters import replay_dead_letters

    _echo(replay_dead_letters(_settings(ctx), origin=origin, dry_run=dry_run).as_dict())


@cli.group()
def mongo() -> None:
    """MongoDB source administration."""


@mongo.command("setup")
@click.pass_context
def mongo_setup(ctx: click.Context) -> None:
    """Create the source's indexes and enable pre-images on the collections (idempotent)."""
    from millpond.stages.source_admin import mongo_setup as setup

    _echo(setup(_settings(ctx)))


@mongo.command("resnapshot")
@click.argument("collection")
@click.pass_context
def mongo_resnapshot(ctx: click.Context, collection: str) -> None:
    """Forget COLLECTION's stream position: the next ingest takes a fresh snapshot of it."""
    from millpond.stages.source_admin import mongo_resnapshot as resnapshot

    _echo(resnapshot(_settings(ctx), collection))


@cli.group()
def kafka() -> None:
    """Kafka source administration."""


@kafka.command("rebaseline")
@click.argument("topic")
@click.pass_context
def kafka_rebaseline(ctx: click.Context, topic: str) -> None:
    """After TOPIC was recreated: archive its landed rows, forget its positions, read it from the beginning."""
    from millpond.stages.source_admin import kafka_rebaseline as rebaseline

    _echo(rebaseline(_settings(ctx), topic))


# -- governance: erasure and retention --------------------------------------------------
@cli.command()
@click.argument("customer_id")
@click.option("--requested-by", required=True, help="who asked (recorded in millpond_meta.erasure_requests)")
@click.option("--reason", help="e.g. 'GDPR art. 17 request #123'")
@click.pass_context
def erase(ctx: click.Context, customer_id: str, requested_by: str, reason: str | None) -> None:
    """Erase CUSTOMER_ID everywhere (warehouse, dead letters, dlt state, serving); re-run completes a killed one."""
    from millpond.stages.erasure import erase as erase_customer

    _echo(erase_customer(_settings(ctx), customer_id, requested_by, reason))


@cli.command()
@click.option("--dry-run", is_flag=True, help="count what would be deleted, delete nothing")
@click.pass_context
def retention(ctx: click.Context, dry_run: bool) -> None:
    """Delete landed Kafka events and dead letters older than MILLPOND_RETENTION_*_DAYS (safe to re-run)."""
    from millpond.stages.retention import run_retention

    _echo(run_retention(_settings(ctx), dry_run=dry_run).as_dict())


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
