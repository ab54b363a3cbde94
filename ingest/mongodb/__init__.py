"""MongoDB source: the shop's operational collections, incremental on ``updated_at``, merged on ``_id``.

Documents are read in ``updated_at`` order from the last cursor value dlt keeps in its state;
nested lists (order line items, status history) become dlt child tables. A document that
breaks the collection's contract goes to the dead-letter table with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dlt
from dlt.sources import DltResource

from ingest.mongodb.contracts import COLLECTIONS
from ingest.mongodb.helpers import UpdatedAtCursor, changed_documents, client_from_url

__all__ = ["COLLECTIONS", "collection_changes", "mongodb_source"]


@dlt.source(name="mongodb", max_table_nesting=1)
def mongodb_source(
    connection_url: str = dlt.secrets.value,
    database: str | None = dlt.config.value,
    collections: Sequence[str] = tuple(COLLECTIONS),
    timeout_ms: int = 30_000,
    batch_size: int = 2_000,
) -> Iterator[DltResource]:
    """One merge resource per collection (``mongo_<collection>``).

    Args:
        connection_url: a MongoDB connection string; from ``sources.mongodb.connection_url`` when not passed.
        database: the database to read; from ``sources.mongodb.database``, else the one the URL names.
        collections: which of the contracted collections to read.
        timeout_ms: server selection, connect and socket timeout of every call.
        batch_size: documents per cursor batch and per page handed to dlt.
    """
    for name in collections:
        yield dlt.resource(
            collection_changes,
            name=f"mongo_{name}",
            primary_key="_id",
            write_disposition="merge",
            columns=COLLECTIONS[name].columns,
        )(connection_url, database, name, timeout_ms, batch_size)


def collection_changes(
    connection_url: str, database: str | None, collection: str, timeout_ms: int, batch_size: int
) -> Iterator[Any]:
    """Documents of ``collection`` changed since the cursor in this resource's state, oldest change first.

    The cursor is saved only once every document was read; dlt commits it together with the load.
    """
    state = dlt.current.resource_state()
    cursor = UpdatedAtCursor.from_state(state)
    with client_from_url(connection_url, timeout_ms) as client:
        yield from changed_documents(client.get_database(database)[collection], cursor, batch_size)
    cursor.save(state)
