-- The webhooks outbox reads an endpoint's next due deliveries in order (next_attempt_at, id)
-- with a seek and a LIMIT: a receiver down for an hour leaves tens of thousands of pending
-- rows, and sorting them all (bodies included) for every batch held the one connection for
-- longer than the sends took. Only pending rows are indexed, so the index stays the size of
-- the backlog. `state` is a column too although the WHERE fixes it: SQLite reads the table
-- row for a column of a partial index's WHERE, and here that row holds the body.
CREATE INDEX webhook_deliveries_pending
    ON webhook_deliveries(webhook_id, state, next_attempt_at) WHERE state = 'pending';
-- The hourly clean-up finds the deliveries that ended long ago by a seek instead of a scan
-- of the whole outbox (which keeps 30 days of them).
CREATE INDEX webhook_deliveries_ended
    ON webhook_deliveries(created_at) WHERE state != 'pending';
