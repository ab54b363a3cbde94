"""Container overlay for Millpond's Superset configuration.

The repository's ``semantic/superset/superset_config.py`` is copied next to this file as
``millpond_superset_base`` and loaded first; this module only adds what a multi-replica,
containerised deployment needs:

* ``MILLPOND_SUPERSET_METADATA_URI`` (optional, secret): SQLAlchemy URI of the metadata database,
  e.g. ``postgresql+psycopg2://superset:PASSWORD@postgres:5432/superset``. Without it the base
  config's SQLite file under ``MILLPOND_DATA_DIR/superset`` is used (single replica only).
"""

from __future__ import annotations

import os

from millpond_superset_base import *  # noqa: F403  (Superset reads module-level names)

_METADATA_URI = os.environ.get("MILLPOND_SUPERSET_METADATA_URI", "")
if _METADATA_URI:
    SQLALCHEMY_DATABASE_URI = _METADATA_URI
