"""Masking macros: personal data leaves the landed layer (bronze) only as a salted hash.

* ``@pii_hash(expr)`` -> the lower-case hex SHA-256 of ``<salt>:<normalised value>``, NULL when the
  value is NULL or blank. Normalised = trimmed and lower-cased, so ``' Ann@Example.COM '`` and
  ``'ann@example.com'`` hash alike and a join on the hash matches what a join on the value would.
  The same value hashes alike on every engine: in Python,
  ``hashlib.sha256(f"{salt}:{value.strip().lower()}".encode()).hexdigest()``.

The salt is the SQLMesh variable ``pii_salt`` (``config.yaml``, from the secret
``MILLPOND_PII_SALT``; ``Settings.sqlmesh_env()`` always provides it). Without the salt a hash of
an e-mail address could be reversed by hashing candidate addresses, so a missing salt is an
error, never a default. The salt is a literal of the rendered query: it is stored in SQLMesh's
state and cache, which live with the warehouse (restricted), and changing it changes every
hashed column (a breaking change: docs/governance/pii.md).

Every engine computes SHA-256 over the UTF-8 bytes and returns hex: DuckDB ``sha256``, Snowflake,
Spark and Databricks ``sha2(x, 256)`` (sqlglot transpiles ``exp.SHA2``); PostgreSQL and BigQuery
return bytes, so their hex encoding is spelled out for the engine the query is evaluated on (the
dialect of SQLMesh's engine adapter; the model dialect while the project loads).
"""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro
from sqlmesh.core.macros import MacroEvaluator
from sqlmesh.utils.errors import ConfigError


def _target_dialect(evaluator: MacroEvaluator) -> str:
    """The engine the query runs on: its adapter's dialect; the model dialect while SQLMesh loads the project."""
    adapter = evaluator.locals.get("engine_adapter")
    return str(adapter.dialect if adapter is not None else evaluator.dialect)


def _sha256_hex(text: exp.Expression, dialect: str) -> exp.Expression:
    if dialect == "postgres":
        # sha256 takes bytea there; encode is qualified so that SQLMesh, which re-reads the rendered
        # query in the model's dialect (DuckDB, whose ENCODE has no format argument), keeps it as is
        utf8 = exp.Anonymous(this="CONVERT_TO", expressions=[text, exp.Literal.string("UTF8")])
        digest = exp.SHA2(this=utf8, length=exp.Literal.number(256))
        encode = exp.Anonymous(this="encode", expressions=[digest, exp.Literal.string("hex")])
        return exp.Dot(this=exp.to_identifier("pg_catalog"), expression=encode)
    digest = exp.SHA2(this=text, length=exp.Literal.number(256))
    if dialect == "bigquery":
        return exp.Lower(this=exp.Hex(this=digest))  # BigQuery's SHA256 returns BYTES: TO_HEX(SHA256(x))
    return digest


@macro()
def pii_hash(evaluator: MacroEvaluator, value: exp.Expression) -> exp.Expression:
    """Salted SHA-256 (lower-case hex) of the trimmed, lower-cased ``value``; NULL for NULL or blank."""
    salt = evaluator.var("pii_salt")
    if not salt:
        raise ConfigError(
            "the PII salt is not set: set MILLPOND_PII_SALT (a secret; config.yaml passes it to the models as"
            " the variable pii_salt), or run through millpond, which provides one"
        )
    normalised = exp.Lower(
        this=exp.Nullif(this=exp.Trim(this=exp.cast(value, "VARCHAR")), expression=exp.Literal.string(""))
    )
    salted = exp.DPipe(this=exp.Literal.string(f"{salt}:"), expression=normalised, safe=True)
    return _sha256_hex(salted, _target_dialect(evaluator))
