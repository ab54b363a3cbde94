"""The customer's values in dlt's pipeline state and working dir.

What the ingest pipeline's state really holds (``state["sources"][<source>]["resources"]``):

* MongoDB cursor mode (``ingest/mongodb/cursor.py``): ``boundary_ids`` (the ``_id`` of the
  documents read at the cursor's instant) and ``quarantined`` (``[_id, <_id>@<version>]`` pairs):
  a customer's document id sits there in clear;
* MongoDB CDC (``ingest/mongodb/cdc.py``): ``resume_token`` / ``snapshot_token``, whose ``_data``
  is the server's key string of the event, the changed document's ``_id`` included; while an
  initial snapshot spans several runs, ``snapshot_after`` holds the last snapshotted ``_id``
  (extended JSON);
* Kafka: positions and flags only.

The current state is edited in ``pipeline.managed_state(extract_state=True)`` and loaded at once,
as ``millpond/stages/source_admin.py`` does; every older version in ``bronze._dlt_pipeline_state``
(dlt restores from the newest one) is rewritten in place; the loaded packages kept under the
pipelines dir (their job files hold the rows, their ``package_state.json`` an old state) and the
last run's trace are deleted: dlt needs neither to resume (it needs the pending packages only).

A resume token that names the customer is replaced by the cluster time it starts with
(``start_at``): the stream is read again from that instant, and the rows read twice merge.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from bson import json_util

from millpond import logs

log = logs.get(__name__)
TOKEN_KEYS = ("resume_token", "snapshot_token")
KEYSTRING_TIMESTAMP = "82"  # the key string type byte of a BSON Timestamp, the first field of a resume token


def token_names(token: Any, key: str) -> bool:
    """Whether a resume token's key string holds ``key`` (as the UTF-8 bytes of a string ``_id``)."""
    data = token.get("_data") if isinstance(token, dict) else None
    return isinstance(data, str) and key.encode().hex() in data.lower()


def token_time(token: dict[str, Any]) -> list[int] | None:
    """``[time, inc]`` of the cluster time a resume token starts with (None when it does not start with one)."""
    data = str(token.get("_data", "")).lower()
    if not data.startswith(KEYSTRING_TIMESTAMP) or len(data) < 18:
        return None
    value = int(data[2:18], 16)
    return [value >> 32, value & 0xFFFFFFFF]


def scrub_resource_state(state: MutableMapping[str, Any], matches: Callable[[str], bool]) -> int:
    """Remove the values ``matches`` picks from one resource's state; how many were removed."""
    removed = 0
    ids = state.get("boundary_ids")
    if isinstance(ids, list):
        kept = [i for i in ids if not matches(str(i))]
        removed += len(ids) - len(kept)
        state["boundary_ids"] = kept
    pairs = state.get("quarantined")
    if isinstance(pairs, list):
        kept_pairs = [p for p in pairs if not (isinstance(p, list) and p and matches(str(p[0])))]
        removed += len(pairs) - len(kept_pairs)
        state["quarantined"] = kept_pairs
    after = state.get("snapshot_after")
    if isinstance(after, str) and matches(str(json_util.loads(after))):
        # an unfinished snapshot resumes after this _id; without it the snapshot re-reads the
        # collection from its start (the merge on _id makes that safe), the stream position is kept
        del state["snapshot_after"]
        removed += 1
    return removed


def scrub_tokens(state: MutableMapping[str, Any], key: str) -> int:
    """Replace resume tokens that name ``key`` by the instant they start at; how many were replaced."""
    replaced = 0
    for name in TOKEN_KEYS:
        token = state.get(name)
        if token is not None and token_names(token, key):
            state[name] = None
            replaced += 1
            if name == "resume_token":
                state["start_at"] = token_time(token)
    if replaced and state.get("snapshot_token") is None:
        state.pop("snapshot_token", None)
    return replaced


def scrub_state(state: MutableMapping[str, Any], matches: Callable[[str], bool], clear_ids: list[str]) -> int:
    """Scrub every resource state of every source in a dlt pipeline state; values removed."""
    removed = 0
    for source in (state.get("sources") or {}).values():
        for resource in (source.get("resources") or {}).values():
            if isinstance(resource, MutableMapping):
                removed += scrub_resource_state(resource, matches)
                for key in clear_ids:
                    removed += scrub_tokens(resource, key)
    return removed


def scrub_stored_states(con: Any, matches: Callable[[str], bool], clear_ids: list[str]) -> int:
    """Rewrite the versions of the state in ``bronze._dlt_pipeline_state`` that hold the customer; rows changed."""
    from dlt.common.versioned_state import compress_state, decompress_state

    tables = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'bronze' "
        "and table_name = '_dlt_pipeline_state'"
    ).fetchone()
    if not tables or not tables[0]:
        return 0
    changed = 0
    for dlt_id, blob in con.execute("select _dlt_id, state from bronze._dlt_pipeline_state").fetchall():
        state = decompress_state(blob)
        if scrub_state(state, matches, clear_ids):
            con.execute(
                "update bronze._dlt_pipeline_state set state = ? where _dlt_id = ?",
                [compress_state(state), dlt_id],  # type: ignore[arg-type]
            )
            changed += 1
    return changed


def scrub_local_state(pipeline: Any, matches: Callable[[str], bool], clear_ids: list[str]) -> int:
    """Edit the pipeline's current state and load the edit (it becomes the newest stored version)."""
    with pipeline.managed_state(extract_state=True) as state:
        removed = scrub_state(state, matches, clear_ids)
    if removed:
        pipeline.normalize()
        pipeline.load().raise_on_failed_jobs()
    return removed


def delete_loaded_packages(pipeline_dir: Path) -> int:
    """Delete the loaded packages (rows and old states) and the last trace; how many packages."""
    loaded = pipeline_dir / "load" / "loaded"
    packages = [p for p in loaded.iterdir() if p.is_dir()] if loaded.is_dir() else []
    for package in packages:
        shutil.rmtree(package, ignore_errors=True)
    (pipeline_dir / "trace.pickle").unlink(missing_ok=True)
    return len(packages)
