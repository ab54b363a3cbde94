"""Heartbeats and the ``millpond health`` probe (pure file logic, in-process)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from millpond.cli import cli
from millpond.health import Heartbeat, check_health


def test_a_beat_is_read_back_with_its_age(tmp_path: Path) -> None:
    beat = Heartbeat(tmp_path, "ingest-follow")
    assert beat.read() is None and beat.age_s() is None
    beat.beat(cycle=3)
    payload = beat.read()
    assert payload is not None and payload["cycle"] == 3 and payload["pid"] == os.getpid()
    later = datetime.fromisoformat(payload["at"]) + timedelta(seconds=90)
    assert beat.age_s(now=later) == 90
    assert [p.name for p in beat.path.parent.iterdir()] == ["ingest-follow.json"]  # no temp file left


def test_a_torn_or_foreign_heartbeat_file_counts_as_none(tmp_path: Path) -> None:
    beat = Heartbeat(tmp_path, "x")
    beat.path.parent.mkdir(parents=True)
    beat.path.write_text('{"at": "yesterday')
    assert beat.read() is None
    beat.path.write_text(json.dumps({"at": "not a time"}))
    assert beat.age_s() is None


def test_health_is_ok_for_a_writable_dir_and_a_fresh_beat(tmp_path: Path) -> None:
    assert check_health(tmp_path).ok
    Heartbeat(tmp_path, "f").beat()
    report = check_health(tmp_path, "f", max_age_s=60)
    assert report.ok, report.problems
    assert report.checks["heartbeat"]["name"] == "f"


def test_health_fails_on_a_missing_or_stale_beat(tmp_path: Path) -> None:
    missing = check_health(tmp_path, "f", max_age_s=60)
    assert not missing.ok and "no heartbeat 'f' yet" in missing.problems[0]
    beat = Heartbeat(tmp_path, "f")
    beat.path.parent.mkdir(parents=True)
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    beat.path.write_text(json.dumps({"at": old}))
    stale = check_health(tmp_path, "f", max_age_s=60)
    assert not stale.ok and "more than 60s" in stale.problems[0]


def test_health_fails_on_a_read_only_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    report = check_health(blocker / "data")  # a path below a regular file can never be created
    assert not report.ok
    assert report.checks["data_dir_writable"] is False


def test_the_cli_probe_exits_1_until_the_follower_has_beaten(tmp_path: Path) -> None:
    env = {"MILLPOND_DATA_DIR": str(tmp_path)}
    args = ["health", "--heartbeat", "ingest-follow", "--max-age", "60"]
    before = CliRunner().invoke(cli, args, env=env)
    assert before.exit_code == 1
    assert json.loads(before.stdout)["ok"] is False
    Heartbeat(tmp_path, "ingest-follow").beat()
    after = CliRunner().invoke(cli, args, env=env)
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["checks"]["data_dir_writable"] is True
