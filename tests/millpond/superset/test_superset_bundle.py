"""Fast tests of the Superset integration's pure logic: no Superset server needed."""

from __future__ import annotations

import io
import os
import runpy
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from millpond.settings import Settings
from millpond.stages import quality
from millpond.superset import bundle, server
from millpond.superset.bootstrap import bootstrap, plan_args
from millpond.superset.errors import SupersetError
from millpond.superset.runtime import Layout, child_env, fingerprint
from tests.support.superset import PROJECT_DIR, bundle_digest

BUNDLE = PROJECT_DIR / "semantic" / "superset" / "bundle"


def _zip_yaml(data: bytes) -> dict[str, dict]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: yaml.safe_load(archive.read(name)) for name in archive.namelist()}


def test_build_zip_rewrites_serving_uri_to_absolute_read_only_path(tmp_path: Path) -> None:
    serving = tmp_path / "serving dir" / "serving.duckdb"
    files = _zip_yaml(bundle.build_zip(BUNDLE, serving))

    database = files[f"{bundle.ZIP_ROOT}/databases/serving.yaml"]
    assert database["sqlalchemy_uri"] == (
        f"duckdb:///{serving.resolve()}?access_mode=read_only&enable_external_access=false&lock_configuration=true"
    )
    assert database["sqlalchemy_uri"].startswith("duckdb:////")
    assert database["allow_dml"] is False
    assert files[f"{bundle.ZIP_ROOT}/metadata.yaml"] == {"version": "1.0.0", "type": "assets"}
    assert all(name.startswith(f"{bundle.ZIP_ROOT}/") for name in files)


def test_build_zip_is_deterministic_and_keyed_on_the_serving_path(tmp_path: Path) -> None:
    first = bundle.build_zip(BUNDLE, tmp_path / "a.duckdb")
    assert first == bundle.build_zip(BUNDLE, tmp_path / "a.duckdb")
    assert bundle_digest(BUNDLE, tmp_path / "a.duckdb") != bundle_digest(BUNDLE, tmp_path / "b.duckdb")


def test_committed_bundle_is_portable_and_consistent() -> None:
    """Every reference in the bundle resolves, and no machine path is committed."""
    docs = {rel: (text, yaml.safe_load(text)) for rel, text in bundle.iter_bundle_files(BUNDLE)}
    by_kind: dict[str, dict[str, dict]] = {}
    for rel, (_text, doc) in docs.items():
        by_kind.setdefault(rel.split("/")[0], {})[doc["uuid"]] = doc

    (database,) = by_kind["databases"].values()
    assert database["sqlalchemy_uri"] == bundle.URI_TEMPLATE
    for rel, (text, _doc) in docs.items():
        assert "/tmp/" not in text and "/work/" not in text, rel
    for dataset in by_kind["datasets"].values():
        assert dataset["database_uuid"] == database["uuid"]
    for chart in by_kind["charts"].values():
        assert chart["dataset_uuid"] in by_kind["datasets"], chart["slice_name"]
        assert chart["query_context"], f"{chart['slice_name']} has no saved query_context"
    dashboards = {d["dashboard_title"]: d for d in by_kind["dashboards"].values()}
    assert set(dashboards) == {"Millpond — Shop overview", "Millpond — Data quality"}
    placed = {title: _placed_charts(dashboard) for title, dashboard in dashboards.items()}
    assert sorted(uuid for uuids in placed.values() for uuid in uuids) == sorted(by_kind["charts"])
    tables = {f"{d['schema']}.{d['table_name']}": uuid for uuid, d in by_kind["datasets"].items()}
    assert set(tables) == {
        "gold.agg_daily_revenue",
        "gold.agg_daily_orders_by_status",
        "gold.agg_daily_events",
        quality.PUBLISHED_AS,
    }
    # The data-quality dashboard charts the published quality history, and nothing else does.
    for title, uuids in placed.items():
        on_quality = {by_kind["charts"][uuid]["dataset_uuid"] == tables[quality.PUBLISHED_AS] for uuid in uuids}
        assert on_quality == {title == "Millpond — Data quality"}, title


def _placed_charts(dashboard: dict) -> set[str]:
    return {
        node["meta"]["uuid"]
        for node in dashboard["position"].values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    }


def test_quality_dataset_matches_the_published_quality_history(tmp_path: Path) -> None:
    """The dataset's columns are those publish copies, and its metrics run on them in DuckDB."""
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        record = quality.CheckRecord("orders", "gold.fct_orders", "row count", "row_count", quality.CRITICAL, "pass", 3)
        quality.save(con, [record], "run", datetime(2025, 1, 1, tzinfo=UTC), "v")
        published = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {quality.QUALITY_HISTORY}").fetchall()}
        (dataset,) = [
            doc
            for _rel, text in bundle.iter_bundle_files(BUNDLE)
            if (doc := yaml.safe_load(text)).get("table_name") == quality.PUBLISHED_AS.split(".")[1]
        ]
        assert dataset["schema"] == quality.PUBLISHED_AS.split(".")[0]
        assert {c["column_name"]: c["type"] for c in dataset["columns"]} == published
        assert dataset["main_dttm_col"] == "checked_at"
        for metric in dataset["metrics"]:
            con.execute(f"SELECT {metric['expression']} FROM {quality.QUALITY_HISTORY}").fetchall()


def test_render_refuses_a_machine_specific_uri() -> None:
    with pytest.raises(SupersetError, match="placeholder"):
        bundle.render_database_yaml("sqlalchemy_uri: duckdb:////home/x/s.duckdb\n", "duckdb:////y")


def test_serving_uri_rejects_characters_that_break_the_uri(tmp_path: Path) -> None:
    with pytest.raises(SupersetError, match="URI"):
        bundle.serving_uri(tmp_path / "what?.duckdb")


def test_absorb_export_strips_ids_restores_placeholder_and_replaces_by_uuid(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    shutil.copytree(BUNDLE, target)
    # An old copy of a chart committed under another file name must be replaced, not duplicated.
    (target / "charts" / "Daily_revenue.yaml").rename(target / "charts" / "Old_name.yaml")
    built = bundle.build_zip(BUNDLE, tmp_path / "serving.duckdb")
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(io.BytesIO(built)) as src, zipfile.ZipFile(export, "w") as dst:
        for name in src.namelist():
            renamed = name.replace(bundle.ZIP_ROOT, "dashboard_export_20250101T000000")
            renamed = renamed.replace(".yaml", "_42.yaml") if "/charts/" in name else renamed
            dst.writestr(renamed, src.read(name))

    written = bundle.absorb_export(export, target)

    assert "charts/Daily_revenue.yaml" in written
    assert not (target / "charts" / "Old_name.yaml").exists()
    assert not list(target.rglob("*_42.yaml"))
    assert (target / "databases" / "serving.yaml").read_text() == (BUNDLE / "databases" / "serving.yaml").read_text()
    assert sorted(p.relative_to(target) for p in target.rglob("*.yaml")) == sorted(
        p.relative_to(BUNDLE) for p in BUNDLE.rglob("*.yaml")
    )


def test_absorb_export_rejects_an_empty_archive(tmp_path: Path) -> None:
    export = tmp_path / "empty.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("x/metadata.yaml", "version: 1.0.0\n")
    with pytest.raises(SupersetError, match="no Superset assets"):
        bundle.absorb_export(export, tmp_path / "bundle")


def test_plan_args_orders_steps_and_separates_them() -> None:
    assert plan_args(["bundle", "schema"], "ana", Path("/b.zip")) == [
        "schema",
        "--",
        "import",
        "/b.zip",
        "ana",
    ]
    assert plan_args(["admin"], "ana", Path("/b.zip")) == ["admin", "ana"]


def test_fingerprint_never_contains_the_secret() -> None:
    key = fingerprint("admin", "ana", "hunter2hunter2", "s3cr3t")
    assert "hunter2" not in key and len(key) == 64


def _settings(tmp_path: Path, **fields: object) -> Settings:
    """Settings on ``tmp_path``; the secrets only when given (never from the caller's environment)."""
    return Settings(**{"data_dir": tmp_path, "superset_admin_password": None, "superset_secret_key": None, **fields})


def test_layout_follows_the_settings(tmp_path: Path) -> None:
    layout = Layout.for_settings(_settings(tmp_path, project_dir=tmp_path / "project"))
    assert layout.venv == tmp_path / "project" / ".venv-superset"
    assert layout.bundle_dir == tmp_path / "project" / "semantic" / "superset" / "bundle"
    assert layout.home == tmp_path.resolve() / "superset"
    assert Layout.for_settings(_settings(tmp_path, superset_venv=tmp_path / "venv")).venv == tmp_path / "venv"


def test_child_env_points_at_config_and_scrubs_the_callers_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    layout = Layout.for_settings(settings)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    env = child_env(layout, settings, "k" * 20)
    assert "PYTHONPATH" not in env
    assert env["SUPERSET_CONFIG_PATH"] == str(PROJECT_DIR / "semantic/superset/superset_config.py")
    assert env["MILLPOND_DATA_DIR"] == str(tmp_path.resolve())
    assert env["PATH"].startswith(str(layout.venv / "bin"))
    assert env["MILLPOND_SUPERSET_SECRET_KEY"] == "k" * 20


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"superset_admin_password": "pw"}, "MILLPOND_SUPERSET_SECRET_KEY must be set"),
        ({"superset_secret_key": "k" * 32}, "MILLPOND_SUPERSET_ADMIN_PASSWORD and"),
        ({"superset_admin_password": "pw", "superset_secret_key": "short"}, "SECRET_KEY must be at least 16"),
    ],
)
def test_bootstrap_names_the_missing_setting(tmp_path: Path, fields: dict[str, str], message: str) -> None:
    with pytest.raises(SupersetError, match=message):
        bootstrap(_settings(tmp_path, **fields))
    assert not (tmp_path / "superset").exists()


def test_bootstrap_points_to_make_target_when_superset_is_not_installed(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, superset_secret_key="k" * 32, superset_admin_password="pw", superset_venv=tmp_path / "no-venv"
    )
    with pytest.raises(SupersetError, match="make setup-superset"):
        bootstrap(settings)


def test_superset_config_refuses_to_load_without_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = PROJECT_DIR / "semantic" / "superset" / "superset_config.py"
    monkeypatch.setenv("MILLPOND_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MILLPOND_SUPERSET_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit):
        runpy.run_path(str(config))
    monkeypatch.setenv("MILLPOND_SUPERSET_SECRET_KEY", "k" * 32)
    settings = runpy.run_path(str(config))
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path.resolve()}/superset/superset.db"
    assert settings["RATELIMIT_STORAGE_URI"] == "memory://"
    assert settings["CACHE_CONFIG"]["CACHE_TYPE"] == "SimpleCache"
    csp = settings["TALISMAN_CONFIG"]["content_security_policy"]
    assert not [src for srcs in csp.values() for src in srcs if "http" in src]


def test_server_status_and_stop_without_a_server(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert server.status(settings) is False
    assert server.stop(settings) is False
    home = tmp_path / "superset"
    home.mkdir()
    (home / "server.pid").write_text(str(os.getpid()))  # alive, but not gunicorn
    assert server.status(settings) is False
    assert server.stop(settings) is False
    assert not (home / "server.pid").exists()
