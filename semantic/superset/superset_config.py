"""Superset configuration for Millpond (loaded through ``SUPERSET_CONFIG_PATH``).

Everything machine- or secret-specific comes from the environment (12-factor):

* ``MILLPOND_SUPERSET_SECRET_KEY`` (required) signs sessions and encrypts stored
  connection passwords. Superset refuses to start without it.
* ``MILLPOND_DATA_DIR`` (default ``.local``) holds the SQLite metadata database
  under ``<data dir>/superset/``.

The instance is deliberately self-contained: in-process caches, in-memory rate
limiting, and a Content-Security-Policy that only allows the server itself, so
the browser makes no third-party calls (telemetry pixel, web fonts, map tiles).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_SECRET_ENV = "MILLPOND_SUPERSET_SECRET_KEY"  # noqa: S105 - a variable name, not a secret

SECRET_KEY = os.environ.get(_SECRET_ENV, "")
if len(SECRET_KEY) < 16:
    sys.stderr.write(
        f"millpond superset_config: environment variable {_SECRET_ENV} is missing or shorter "
        "than 16 characters; generate one with `openssl rand -base64 42`.\n"
    )
    raise SystemExit(2)

_DATA_DIR = Path(os.environ.get("MILLPOND_DATA_DIR", ".local")).expanduser().resolve()
SUPERSET_HOME = _DATA_DIR / "superset"
SUPERSET_HOME.mkdir(parents=True, exist_ok=True)

# Metadata database (users, dashboards, charts): SQLite, absolute path.
SQLALCHEMY_DATABASE_URI = f"sqlite:///{SUPERSET_HOME / 'superset.db'}"
SQLALCHEMY_TRACK_MODIFICATIONS = False

# Uploads and other writable paths stay inside the data dir, not site-packages.
DATA_DIR = str(SUPERSET_HOME)
UPLOAD_FOLDER = str(SUPERSET_HOME / "uploads") + "/"

# Single-process caches; no Redis needed for a local analyst instance.
_CACHE_TIMEOUT = int(os.environ.get("MILLPOND_SUPERSET_CACHE_TIMEOUT", "300"))
CACHE_CONFIG = {
    "CACHE_TYPE": "SimpleCache",
    "CACHE_DEFAULT_TIMEOUT": _CACHE_TIMEOUT,
    "CACHE_KEY_PREFIX": "millpond_",
}
DATA_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "millpond_data_"}
FILTER_STATE_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "millpond_filter_"}
EXPLORE_FORM_DATA_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "millpond_explore_"}
RATELIMIT_STORAGE_URI = "memory://"

# No external calls: analytics-free stats logger (the default), no map tokens,
# no remote fonts, and a CSP that pins every resource to this server.
MAPBOX_API_KEY = ""
THEME_FONT_URL_ALLOWED_DOMAINS: list[str] = []
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
CONTENT_SECURITY_POLICY_WARNING = False

FEATURE_FLAGS: dict[str, bool] = {
    "DASHBOARD_RBAC": False,
    "EMBEDDED_SUPERSET": False,
    "ALERT_REPORTS": False,
}

# Analysts query the read-only serving file; keep SQL Lab away from DML.
SQLLAB_CTAS_NO_LIMIT = False

# Every DuckDB connection must open its file read-only, with external access off and the
# configuration locked (the bundle's `serving` URI does). Superset calls this before it creates
# any engine, for charts, SQL Lab and "test connection" alike, so a DuckDB connection added in
# the UI without these options cannot run a query that reads other files.
_DUCKDB_REQUIRED = {"access_mode": "read_only", "enable_external_access": "false", "lock_configuration": "true"}


def DB_SQLA_URI_VALIDATOR(sqlalchemy_uri: Any) -> None:
    """Refuse a DuckDB SQLAlchemy URL that lacks the read-only, no-external-access options."""
    if sqlalchemy_uri.get_backend_name() != "duckdb":
        return
    wrong = sorted(k for k, v in _DUCKDB_REQUIRED.items() if str(sqlalchemy_uri.query.get(k, "")).lower() != v)
    if wrong:
        wanted = "&".join(f"{k}={v}" for k, v in _DUCKDB_REQUIRED.items())
        raise ValueError(f"DuckDB connections must set {wanted} (missing or different: {', '.join(wrong)})")


ROW_LIMIT = 50_000
SUPERSET_WEBSERVER_TIMEOUT = 60
