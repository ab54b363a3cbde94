"""Dashboards as code: the YAML bundle under ``semantic/superset/bundle/``.

The bundle is Superset's unzipped export format (``metadata.yaml``, ``databases/``,
``datasets/``, ``charts/``, ``dashboards/``). Only one thing in it is machine
specific, the serving database's path, so the committed YAML carries a placeholder
followed by :data:`SERVING_OPTIONS` (:data:`URI_TEMPLATE`)::

    sqlalchemy_uri: duckdb:///${MILLPOND_SERVING_PATH}?access_mode=read_only&enable_external_access=...

:func:`build_zip` turns the tree into an importable ZIP with the real absolute path (and
always this module's connection options, whatever the YAML says), and :func:`absorb_export`
does the reverse for a ZIP exported from the Superset UI, so analysts can commit what they
built.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from millpond.superset.errors import SupersetError

PLACEHOLDER = "${MILLPOND_SERVING_PATH}"
# DuckDB configuration of the serving connection (duckdb_engine passes URL query parameters
# to ``duckdb.connect(config=...)``): the file opens read-only; no query reads, lists or writes
# another path, attaches another database or loads an extension from disk; no SET or RESET
# can change any of that.
SERVING_OPTIONS = "access_mode=read_only&enable_external_access=false&lock_configuration=true"
URI_TEMPLATE = f"duckdb:///{PLACEHOLDER}?{SERVING_OPTIONS}"
ZIP_ROOT = "millpond_bundle"
ASSET_DIRS = ("databases", "datasets", "charts", "dashboards")
# Superset names exported files "<Title>_<id>.yaml"; the id differs per instance.
_ID_SUFFIX = re.compile(r"_\d+(?=\.ya?ml$)")
_URI_LINE = re.compile(r"^sqlalchemy_uri:.*$", re.MULTILINE)
_FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def serving_uri(serving_path: Path) -> str:
    """The locked, read-only DuckDB SQLAlchemy URI for an absolute serving file path."""
    path = Path(serving_path).expanduser().resolve()
    text = path.as_posix()
    if any(ch in text for ch in "?#\n\r\"'"):
        raise SupersetError(f"serving path {text!r} contains characters unusable in a URI")
    return URI_TEMPLATE.replace(PLACEHOLDER, text)


def iter_bundle_files(bundle_dir: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(relative posix path, text)`` for every YAML asset, sorted for determinism."""
    if not (bundle_dir / "metadata.yaml").is_file():
        raise SupersetError(f"{bundle_dir} is not a Superset bundle (no metadata.yaml)")
    files = sorted(p for top in ASSET_DIRS for p in (bundle_dir / top).rglob("*.yaml") if p.is_file())
    if not any(p.parts[-2] == "dashboards" for p in files):
        raise SupersetError(f"{bundle_dir} contains no dashboards/*.yaml")
    for path in files:
        yield path.relative_to(bundle_dir).as_posix(), path.read_text(encoding="utf-8")


def render_database_yaml(text: str, uri: str) -> str:
    """Replace the placeholder URI in a database YAML with ``uri`` (JSON-quoted, valid YAML)."""
    if PLACEHOLDER not in text:
        raise SupersetError(f"database YAML must use the placeholder URI {URI_TEMPLATE!r}, not a machine-specific path")
    return _URI_LINE.sub(lambda _m: f"sqlalchemy_uri: {json.dumps(uri)}", text, count=1)


def build_zip(bundle_dir: Path, serving_path: Path) -> bytes:
    """Build the importable ZIP (bytes) with the serving URI filled in.

    The archive is deterministic (sorted entries, fixed timestamps), so its hash
    identifies "this bundle for this serving file" and drives re-import decisions.
    ``metadata.yaml`` is written as an *assets* bundle: Superset's assets importer
    overwrites databases, datasets, charts and dashboards, which is what keeping
    them as code needs (the dashboard importer leaves existing charts untouched).
    """
    uri = serving_uri(serving_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _write(archive, "metadata.yaml", "version: 1.0.0\ntype: assets\n")
        for rel, text in iter_bundle_files(bundle_dir):
            _write(archive, rel, render_database_yaml(text, uri) if rel.startswith("databases/") else text)
    return buf.getvalue()


def _write(archive: zipfile.ZipFile, rel: str, text: str) -> None:
    info = zipfile.ZipInfo(f"{ZIP_ROOT}/{rel}", date_time=_FIXED_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, text.encode("utf-8"))


def absorb_export(export_zip: Path, bundle_dir: Path) -> list[str]:
    """Unpack a Superset UI/API export into the bundle tree; return the paths written.

    The numeric id suffix is dropped from file names (ids differ per instance; the
    UUID inside is the identity), any file already holding the same UUID is replaced,
    and the database URI is put back to the placeholder.
    """
    written: list[str] = []
    with zipfile.ZipFile(export_zip) as archive:
        for name in sorted(archive.namelist()):
            parts = PurePosixPath(name).parts
            if len(parts) < 3 or parts[1] not in ASSET_DIRS or not name.endswith(".yaml"):
                continue  # root folder, metadata.yaml and anything unexpected
            rel = PurePosixPath(*parts[1:])
            rel = rel.with_name(_ID_SUFFIX.sub("", rel.name))
            text = archive.read(name).decode("utf-8")
            if rel.parts[0] == "databases":
                text = _URI_LINE.sub(lambda _m: f"sqlalchemy_uri: {URI_TEMPLATE}", text, count=1)
            target = bundle_dir / rel
            _remove_same_uuid(bundle_dir / rel.parts[0], _uuid_of(text), keep=target)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(rel.as_posix())
    if not written:
        raise SupersetError(f"{export_zip} holds no Superset assets")
    return written


def _uuid_of(text: str) -> str | None:
    match = re.search(r"^uuid: (\S+)$", text, re.MULTILINE)
    return match.group(1) if match else None


def _remove_same_uuid(folder: Path, uuid: str | None, keep: Path) -> None:
    if uuid is None or not folder.is_dir():
        return
    for path in folder.rglob("*.yaml"):
        if path != keep and _uuid_of(path.read_text(encoding="utf-8")) == uuid:
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    """``python -m millpond.superset.bundle EXPORT.zip [BUNDLE_DIR]``: absorb an export.

    ``BUNDLE_DIR`` defaults to the project's ``semantic/superset/bundle``.
    """
    import sys

    from millpond.settings import load
    from millpond.superset.runtime import Layout

    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        sys.stderr.write("usage: python -m millpond.superset.bundle EXPORT.zip [BUNDLE_DIR]\n")
        return 2
    bundle_dir = Path(args[1]) if len(args) == 2 else Layout.for_settings(load()).bundle_dir
    for rel in absorb_export(Path(args[0]), bundle_dir):
        sys.stdout.write(f"wrote {bundle_dir / rel}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
