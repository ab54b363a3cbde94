"""How the suite is spread over pytest-xdist workers (``-n 2 --dist loadgroup``, as ``make test`` runs it).

Each worker is its own process with its own session fixtures: its own mongod, broker and PostgreSQL
on free ports, in its own temp dirs. A fixture that several tests share (module, class, package or
session scope) is built once per worker that runs one of them, so tests that share such a fixture
must run on one worker: a module fixture may carry state from one test to the next (the e2e shop
is built by the first test and read by the later ones), and a session fixture may be expensive (one
Superset for the session). :func:`assign_groups` gives every such set of tests one ``xdist_group``.
The fixtures of the root ``tests/conftest.py`` (the session services) and of pytest and its plugins
(``tmp_path_factory``, ...) are meant to exist once per worker: they group nothing.

:func:`heavy_first` orders the collection so that the slow tests start first and the many quick ones
fill the workers at the end, which is how both workers finish together. xdist's loadgroup scheduler
hands out the groups first, largest first, then single tests in collection order.

The scheduler reads a test's group from the ``@name`` suffix of its node id, which xdist's worker
writes into ``Item._nodeid``; pytest 9.2 keeps the node id in ``Item._id`` and ignores that field, so
no suffix arrives and every group is silently spread over the workers (pytest-xdist issue 1386).
:func:`suffix_group_ids` writes the suffix where this pytest reads it, for the tests that do not
carry one after xdist's hook; with a pytest or xdist that already suffixes the id it does nothing.
"""

from __future__ import annotations

import re

import pytest

# Markers of the tests that take tens of seconds each (real pipelines, Superset, subprocess runs).
HEAVY_MARKERS = ("superset", "slow")
GROUP_MARKER = "xdist_group"


class _Groups:
    """Union-find over shared fixtures and explicit ``xdist_group`` names."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, keys: list[str]) -> None:
        roots = [self.find(key) for key in keys]
        for root in roots[1:]:
            self.parent[root] = roots[0]


def _shared_fixtures(item: pytest.Item, per_worker: str) -> list[str]:
    """One key per instance of a shared fixture the test uses (a module fixture has one instance per module),
    leaving out those defined by plugins and by the conftest whose node id is ``per_worker``."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    keys = []
    for name, defs in info.name2fixturedefs.items():
        fixturedef = defs[-1]
        scope = fixturedef.scope
        if scope == "function" or fixturedef.baseid in ("", per_worker):
            continue
        if scope == "module":
            owner = item.module.__name__ if isinstance(item, pytest.Function) else item.nodeid.split("::")[0]
        elif scope == "class":
            owner = item.nodeid.rsplit("::", 1)[0]
        else:
            owner = fixturedef.baseid
        keys.append(f"fixture {owner}:{name}")
    return keys


def _short(key: str) -> str:
    """A group's name from its first fixture key: ``test_pipeline_e2e.shop``, ``superset.superset``."""
    owner, name = key.removeprefix("fixture ").rsplit(":", 1)
    return f"{re.split(r'[./:]+', owner.removesuffix('.py'))[-1]}.{name}"


def _explicit_group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker(GROUP_MARKER)
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def assign_groups(items: list[pytest.Item], per_worker: str) -> None:
    """Give each set of tests that share a fixture (or an explicit ``xdist_group``) one group name; the
    fixtures of the conftest whose node id is ``per_worker`` are built by every worker and tie nothing."""
    groups = _Groups()
    keys_of: dict[str, list[str]] = {}
    for item in items:
        explicit = _explicit_group(item)
        keys = _shared_fixtures(item, per_worker) + ([f"group {explicit}"] if explicit else [])
        keys_of[item.nodeid] = keys
        if keys:
            groups.union(keys)
    names: dict[str, str] = {}  # root -> the group's name: its explicit name, else its first fixture
    explicit_names: dict[str, set[str]] = {}
    for keys in keys_of.values():
        for key in keys:
            root = groups.find(key)
            if key.startswith("group "):
                explicit_names.setdefault(root, set()).add(key.removeprefix("group "))
            names.setdefault(root, _short(key))
    for root, declared in explicit_names.items():
        if len(declared) > 1:
            raise pytest.UsageError(f"tests share fixtures across xdist groups {sorted(declared)}: use one name")
        names[root] = next(iter(declared))
    for item in items:
        keys = keys_of[item.nodeid]
        if keys and _explicit_group(item) is None:
            item.add_marker(pytest.mark.xdist_group(names[groups.find(keys[0])]))


def _group_names(item: pytest.Item) -> str | None:
    """The group suffix xdist derives from an item's ``xdist_group`` marks (sorted, joined by ``_``)."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers(GROUP_MARKER)}
    return "_".join(sorted(names)) if names else None


def suffix_group_ids(items: list[pytest.Item]) -> None:
    """Append ``@group`` to the node id of every grouped test whose id does not end with it yet."""
    for item in items:
        group = _group_names(item)
        if group is None or item.nodeid.endswith(f"@{group}"):
            continue
        node_id = getattr(item, "_id", None)
        parse = getattr(type(node_id), "parse", None)
        if parse is None:  # a pytest that reads the legacy field
            item._nodeid = f"{item.nodeid}@{group}"  # type: ignore[attr-defined]
        else:
            item._id = parse(f"{item.nodeid}@{group}")


def heavy_first(items: list[pytest.Item]) -> None:
    """The modules holding a test marked slow or superset first, each kind in collection order (a stable
    sort by module, so a module's tests stay together)."""
    heavy = {item.nodeid.split("::")[0] for item in items if any(item.get_closest_marker(m) for m in HEAVY_MARKERS)}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in heavy)
