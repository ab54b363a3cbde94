"""Personal data under control: classification tags, the lint rule, the masking macro and the salt.

The rule and the macro run in a small SQLMesh project made of the project's own files
(``linter/classification.py``, ``macros/pii.py``), loaded by a real ``Context``: SQLMesh discovers
the rule by its name and serialises the macro with the salt, as it does for the warehouse.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from millpond.classification import HASHED, PUBLIC, parse
from millpond.services import PostgresCluster
from millpond.settings import REPO_ROOT, Settings

SALT = "unit-test-salt"


def python_hash(value: str) -> str:
    """The hash @pii_hash computes, spelled in Python (what the erasure registry and the docs promise)."""
    return hashlib.sha256(f"{SALT}:{value.strip().lower()}".encode()).hexdigest()


# -- parse -------------------------------------------------------------------------------
def test_parse_reads_the_tag_and_leaves_the_description() -> None:
    email = parse("[pii:email] E-mail address.")
    assert (email.classification, email.description, email.is_clear_pii) == ("pii:email", "E-mail address.", True)
    hashed = parse("  [pii:hashed] Salted hash.")
    assert (hashed.classification, hashed.is_clear_pii) == (HASHED, False)
    assert parse("City of the customer.") == parse("City of the customer.")
    assert parse("City of the customer.").classification == PUBLIC
    assert parse(None).classification == PUBLIC


def test_parse_refuses_an_unknown_tag() -> None:
    with pytest.raises(ValueError, match=r"unknown classification \[pii:emial\]"):
        parse("[pii:emial] E-mail address.")


# -- a small project of the real rule and macro ------------------------------------------
def make_project(root: Path, models: dict[str, str], pg_port: int | None = None) -> Path:
    """A SQLMesh project with the project's rule and macro, ``models`` (path -> SQL) and, optionally, a PG gateway."""
    (root / "linter").mkdir(parents=True)
    (root / "macros").mkdir()
    shutil.copy(REPO_ROOT / "linter" / "classification.py", root / "linter")
    shutil.copy(REPO_ROOT / "macros" / "pii.py", root / "macros")
    for path, text in models.items():
        (root / "models" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "models" / path).write_text(textwrap.dedent(text))
    postgres = (
        f"""
  postgres:
    connection: {{type: postgres, host: 127.0.0.1, port: {pg_port}, user: postgres, password: '', database: postgres}}
    state_connection: {{type: duckdb}}"""
        if pg_port
        else ""
    )
    (root / "config.yaml").write_text(
        textwrap.dedent(
            f"""\
            gateways:
              duckdb:
                connection: {{type: duckdb}}{{postgres}}
            default_gateway: duckdb
            model_defaults: {{dialect: duckdb}}
            variables: {{pii_salt: {SALT}}}
            disable_anonymized_analytics: true
            linter: {{enabled: true, rules: [classifiedcolumns]}}
            """
        ).replace("{postgres}", postgres)
    )
    return root


def context(root: Path, gateway: str = "duckdb") -> Any:
    from sqlmesh import Context

    return Context(paths=[str(root)], gateway=gateway)


def violations(ctx: Any) -> list[str]:
    return sorted(v.violation_msg for v in ctx.lint_models(raise_on_error=False))


def test_the_lint_rule_flags_clear_pii_in_gold_and_unknown_tags_but_not_bronze_or_hashes(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "gold/leak.sql": """
                MODEL (name gold.leak, kind VIEW, column_descriptions (email = '[pii:email] E-mail address.'));
                SELECT 'ann@example.com' AS email
            """,
            "silver/typo.sql": """
                MODEL (name silver.typo, kind VIEW, column_descriptions (phone_hash = '[pii:hashd] Hash.'));
                SELECT 'x' AS phone_hash
            """,
            "silver/masked.sql": """
                MODEL (name silver.masked, kind VIEW, column_descriptions (
                  email_hash = '[pii:hashed] Salted hash of the e-mail.', city = 'City.'));
                SELECT @pii_hash('ann@example.com') AS email_hash, 'Berlin' AS city
            """,
            "bronze/landed.sql": """
                MODEL (name bronze.landed, kind VIEW, column_descriptions (name = '[pii:name] Full name.'));
                SELECT 'Ann Lee' AS name
            """,
        },
    )
    found = violations(context(root))
    assert len(found) == 2, found
    assert found[0].startswith("gold.leak.email is classified [pii:email]: personal data in clear stays in bronze")
    assert "silver.typo.phone_hash: unknown classification [pii:hashd]" in found[1]


def test_the_project_classifies_its_pii_and_passes_the_rule(tmp_path: Path) -> None:
    from millpond.envutil import scoped_env

    cfg = Settings(data_dir=tmp_path, pii_salt=SALT)  # type: ignore[arg-type]
    cfg.warehouse.parent.mkdir(parents=True)
    with scoped_env(cfg.sqlmesh_env()):
        ctx = context(cfg.project_dir)
    try:
        assert violations(ctx) == []
        bronze = {
            c: parse(d).classification for c, d in ctx.get_model("bronze.mongo_customers").column_descriptions.items()
        }
        assert {bronze[c] for c in ("name", "email", "phone", "address__street")} <= {
            "pii:name", "pii:email", "pii:phone", "pii:address"
        }  # fmt: skip
        silver = ctx.get_model("silver.stg_customers")
        assert {"email_hash", "phone_hash"} <= set(silver.columns_to_types)
        assert not {"email", "phone", "customer_name", "street", "postcode"} & set(silver.columns_to_types)
        assert parse(silver.column_descriptions["email_hash"]).classification == HASHED
    finally:
        ctx.close()


# -- the masking macro on both engines ---------------------------------------------------
HASHED_MODEL = {
    "silver/hashed.sql": """
        MODEL (name silver.hashed, kind VIEW);
        SELECT @pii_hash(' Ann@Example.COM ') AS email_hash, @pii_hash('   ') AS blank_hash,
               @pii_hash(NULL) AS null_hash, @pii_hash('ann@example.com') AS same_hash
    """,
}


def test_pii_hash_is_the_same_salted_sha256_on_duckdb_and_postgresql(tmp_path: Path, postgres: PostgresCluster) -> None:
    root = make_project(tmp_path, HASHED_MODEL, pg_port=postgres.port)
    expected = (python_hash("ann@example.com"), None, None, python_hash("ann@example.com"))
    for gateway in ("duckdb", "postgres"):
        ctx = context(root, gateway)
        try:
            query = ctx.render("silver.hashed")
            assert SALT in query.sql(), "the salt is a literal of the rendered query"
            assert tuple(ctx.engine_adapter.fetchall(query)[0]) == expected, gateway
        finally:
            ctx.close()


def test_pii_hash_without_a_salt_fails_naming_the_variable(tmp_path: Path) -> None:
    root = make_project(tmp_path, HASHED_MODEL)
    config = root / "config.yaml"
    config.write_text(config.read_text().replace(f"pii_salt: {SALT}", "pii_salt: ''"))
    with pytest.raises(Exception, match="MILLPOND_PII_SALT"):
        context(root)


# -- the salt ----------------------------------------------------------------------------
def test_the_salt_comes_from_the_setting_and_is_never_shown(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, pii_salt="from-the-secret-store")  # type: ignore[arg-type]
    assert cfg.sqlmesh_env()["MILLPOND_PII_SALT"] == "from-the-secret-store"
    assert "from-the-secret-store" not in repr(cfg)
    assert not cfg.pii_salt_file.exists()


def test_without_the_setting_a_salt_is_generated_once_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MILLPOND_PII_SALT", raising=False)  # `make test` exports a test salt
    cfg = Settings(data_dir=tmp_path)
    first = cfg.sqlmesh_env()["MILLPOND_PII_SALT"]
    assert len(first) == 64
    assert stat.S_IMODE(cfg.pii_salt_file.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path).resolved_pii_salt().get_secret_value() == first  # a later process
    assert Settings(data_dir=tmp_path / "other").resolved_pii_salt().get_secret_value() != first
    with duckdb.connect() as con:  # the DuckDB function the macro renders to agrees with Python
        (digest,) = con.execute("select sha256(? || ':' || lower(trim(?)))", [SALT, " Ann@Example.COM "]).fetchone()
    assert digest == python_hash("ann@example.com")
