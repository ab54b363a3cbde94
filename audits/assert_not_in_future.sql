-- Generic audit: fails on any row whose time column is later than now plus the future skew the
-- Kafka edge allows (@future_limit, macros/events.py).
-- Blocking: the edge quarantines every event later than that (contract.implausible_time), and the
-- audit runs after the ingest that landed the event, so a failure is a bug, not a bad record.
-- Usage in a MODEL block: audits (assert_not_in_future(column := event_ts))
AUDIT (
  name assert_not_in_future
);

SELECT *
FROM @this_model
WHERE @column > @future_limit()
