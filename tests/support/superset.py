"""Superset test helpers: the running test instance, an API session on it, bundle digests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import requests

from millpond.settings import Settings
from millpond.superset import bundle

PROJECT_DIR = Settings().project_dir


@dataclass
class Instance:
    """The Superset the session fixture started, with what the tests compare against."""

    url: str
    settings: Settings
    total_revenue: Decimal
    timings: dict[str, float]

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def serving(self) -> Path:
        return self.settings.serving

    @property
    def user(self) -> str:
        return self.settings.superset_admin_user

    @property
    def password(self) -> str:
        assert self.settings.superset_admin_password is not None
        return self.settings.superset_admin_password.get_secret_value()


def api_session(instance: Instance) -> requests.Session:
    """Log in as the admin: bearer token, Superset's session cookie, CSRF token and Referer for writes."""
    session = requests.Session()
    resp = session.post(
        f"{instance.url}/api/v1/security/login",
        json={"username": instance.user, "password": instance.password, "provider": "db", "refresh": False},
        timeout=30,
    )
    resp.raise_for_status()
    session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    csrf = session.get(f"{instance.url}/api/v1/security/csrf_token/", timeout=30)
    csrf.raise_for_status()
    session.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": instance.url})
    return session


def bundle_digest(bundle_dir: Path, serving_path: Path) -> str:
    """SHA-256 of the ZIP that :func:`millpond.superset.bundle.build_zip` produces."""
    return hashlib.sha256(bundle.build_zip(bundle_dir, serving_path)).hexdigest()
