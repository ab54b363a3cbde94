"""`millpond ingest` killed at every step, per source, then re-run: the landed counts equal the source exactly.

Crash points (``MILLPOND_CRASH_AFTER``, exit 137 like SIGKILL): after extract, after normalize,
inside the load after the first job (``load.job``), after the last job but before dlt marks the
package loaded (``load.jobs_done``), and after the load before the consumer-group commit
(``load``). Also inside dlt's own extract step, between committing the load package (with the new
Kafka positions in its state) and saving the pipeline state locally. Unreachable sources: one
clear error line naming the address and the setting.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date

import pymongo
import pytest

from millpond.generator import GeneratorConfig, generate
from millpond.settings import Settings
from millpond.stages.ingest import run_ingest
from tests.support.landed import exact, kafka_counts, mongo_counts
from tests.support.pipelines import pipeline_env
from tests.support.ports import free_port

pytestmark = pytest.mark.slow
SMALL = GeneratorConfig(customers=30, products=10, orders_per_day=15, sessions_per_day=5, days=3, malformed_rate=0.05)
CRASH_POINTS = ["extract", "normalize", "load.job", "load.jobs_done", "load"]
# `millpond ingest`, killed (exit 137) once dlt has committed its first load package and before
# `Pipeline.managed_state` saves the new pipeline state to the working directory.
KILLED_AFTER_PACKAGE_COMMIT = """
import os
import sys
from dlt.extract.extract import Extract
from millpond.cli import main
commit = Extract.commit_packages
def commit_then_die(self):
    commit(self)
    os._exit(137)
Extract.commit_packages = commit_then_die
sys.argv = ["millpond", "ingest"]
main()
"""


def _ingest(cfg: Settings, *extra_env: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    env = pipeline_env(cfg) | dict(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "millpond", "ingest"], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def shop(make_settings):
    cfg = make_settings("crash")
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        result = generate(SMALL, date(2026, 3, 3), client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())
    return cfg, result.messages


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kafka_ingest_killed_then_rerun_is_exact(shop, point: str):
    cfg, produced = shop
    crashed = subprocess.run(  # the follower reads Kafka only
        [sys.executable, "-m", "millpond", "ingest", "--follow", "--interval", "0"],
        env=pipeline_env(cfg) | {"MILLPOND_CRASH_AFTER": point},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert f'"after": "{point}"' in crashed.stderr
    run_ingest(cfg, mongo=False)
    assert kafka_counts(cfg) == (produced, 0)  # nothing lost, nothing twice
    run_ingest(cfg, mongo=False)
    assert kafka_counts(cfg) == (produced, 0)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_full_ingest_killed_then_rerun_is_exact(shop, point: str):
    cfg, produced = shop
    crashed = _ingest(cfg, ("MILLPOND_CRASH_AFTER", point))
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    ok = _ingest(cfg)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert kafka_counts(cfg) == (produced, 0)
    assert all(truth == landed for truth, landed, _ in mongo_counts(cfg).values()), mongo_counts(cfg)


@pytest.mark.parametrize("earlier_runs", [0, 1])
def test_killed_between_dlt_committing_the_package_and_saving_the_state_then_rerun_is_exact(shop, earlier_runs: int):
    """The pending package carries positions the local state lacks: the re-run must not read them again.

    On a first run dlt has not saved the schema either; after an earlier run it has.
    """
    cfg, produced = shop
    if earlier_runs:
        run_ingest(cfg)
        with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
            more = generate(SMALL, date(2026, 3, 4), client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())
        produced += more.messages
    crashed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_PACKAGE_COMMIT],
        env=pipeline_env(cfg),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    ok = _ingest(cfg)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert kafka_counts(cfg) == (produced, 0)  # nothing lost, nothing twice
    assert all(truth == landed for truth, landed, _ in mongo_counts(cfg).values()), mongo_counts(cfg)


@pytest.mark.parametrize("point", ["extract", "load.job", "load"])
def test_a_snapshot_in_bounded_packages_killed_in_its_first_package_then_rerun_is_exact(shop, point: str):
    cfg, produced = shop
    bounded = ("MILLPOND_MONGO_SNAPSHOT_DOCS_PER_LOAD", "10")  # 30 customers, 10 products, 45 orders: 3 to 5 packages
    crashed = _ingest(cfg, bounded, ("MILLPOND_CRASH_AFTER", point))
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    ok = _ingest(cfg, bounded)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "ingest.next_package" in ok.stderr  # the re-run went on with the snapshot in packages of its own
    assert exact(cfg, produced), (kafka_counts(cfg), mongo_counts(cfg))


@pytest.mark.parametrize(
    ("variable", "setting"),
    [("MILLPOND_KAFKA_BOOTSTRAP", "MILLPOND_KAFKA_BOOTSTRAP"), ("MILLPOND_MONGO_URI", "MILLPOND_MONGO_URI")],
)
def test_an_unreachable_source_is_one_clear_line_within_the_timeout(shop, variable: str, setting: str):
    cfg, _produced = shop
    address = f"127.0.0.1:{free_port()}"
    value = address if variable.endswith("BOOTSTRAP") else f"mongodb://{address}/?directConnection=true"
    # the same interpreter start-up and imports, timed now, so a loaded machine does not count as waiting
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import millpond.cli, millpond.stages.ingest"], check=True, timeout=300)
    start_up = time.monotonic() - started
    started = time.monotonic()
    proc = _ingest(cfg, (variable, value), ("MILLPOND_IO_TIMEOUT_S", "3"))
    elapsed = time.monotonic() - started - start_up
    assert proc.returncode == 1
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("error: [ingest] ") and address in last and setting in last, last
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) < 15, proc.stderr  # no flood of client-library lines
    assert not [line for line in proc.stderr.splitlines() if line.startswith("%")]  # raw librdkafka lines
    assert elapsed < 3 * 4 + 8, (elapsed, start_up)  # within a few I/O timeouts
