"""The customer's values out of a dlt pipeline state: cursor-mode ids and CDC resume tokens."""

from __future__ import annotations

from bson import json_util

from millpond.stages.erasure_state import scrub_state, token_time

CUSTOMER = "cus_000042"


def _token(key: str, time: int = 1_700_000_000, inc: int = 7) -> dict[str, str]:
    """A resume token's shape: the key string starts with the cluster time (type 0x82), then the document key."""
    return {"_data": f"82{(time << 32 | inc):016X}2B042C0100296E5A1004" + key.encode().hex().upper() + "0004"}


def test_cursor_ids_and_a_token_naming_the_customer_are_removed_others_kept():
    state = {
        "sources": {
            "mongodb": {
                "resources": {
                    "mongo_customers": {
                        "boundary_ids": ["cus_000001", CUSTOMER],
                        "quarantined": [[CUSTOMER, f"{CUSTOMER}@v1"], ["cus_000002", "cus_000002@v3"]],
                        "resume_token": _token(CUSTOMER),
                    },
                    "mongo_orders": {"resume_token": _token("ord_000001"), "boundary_ids": ["ord_000001"]},
                }
            },
            "kafka": {"resources": {"kafka_clickstream": {"positions": {"0": 12}}}},
        }
    }
    removed = scrub_state(state, {CUSTOMER}.__contains__, [CUSTOMER])
    resources = state["sources"]["mongodb"]["resources"]
    assert removed == 3
    assert resources["mongo_customers"]["boundary_ids"] == ["cus_000001"]
    assert resources["mongo_customers"]["quarantined"] == [["cus_000002", "cus_000002@v3"]]
    assert resources["mongo_customers"]["resume_token"] is None
    assert resources["mongo_customers"]["start_at"] == [1_700_000_000, 7]  # the stream is re-read from there
    assert resources["mongo_orders"] == {"resume_token": _token("ord_000001"), "boundary_ids": ["ord_000001"]}
    assert CUSTOMER not in repr(state)
    assert scrub_state(state, {CUSTOMER}.__contains__, [CUSTOMER]) == 0  # idempotent


def test_token_time_reads_the_leading_cluster_time():
    assert token_time(_token("x", 123, 4)) == [123, 4]
    assert token_time({"_data": "00"}) is None


def test_an_unfinished_snapshot_resuming_after_the_customer_restarts_from_the_beginning():
    """``snapshot_after`` (extended JSON of the last snapshotted _id) naming the customer is dropped:
    the snapshot then re-reads the collection from its start, which the merge on _id makes safe."""
    resource = {"snapshot_done": False, "snapshot_after": json_util.dumps(CUSTOMER), "snapshot_token": {"_data": "x"}}
    other = {"snapshot_done": False, "snapshot_after": json_util.dumps("cus_000001")}
    state = {"sources": {"mongodb": {"resources": {"mongo_customers": resource, "mongo_orders": other}}}}
    assert scrub_state(state, {CUSTOMER}.__contains__, [CUSTOMER]) == 1
    assert "snapshot_after" not in resource and resource["snapshot_done"] is False
    assert resource["snapshot_token"] == {"_data": "x"}  # the stream still starts where the snapshot began
    assert other["snapshot_after"] == json_util.dumps("cus_000001")
    assert CUSTOMER not in repr(state)
