-- Outgoing webhooks: the endpoints the administrators set up (which call events, the secret
-- the body is signed with) and an outbox of deliveries, so that an event survives a restart
-- and a receiver that is down for hours.
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    url           TEXT NOT NULL,
    -- the event types sent, space-separated ("call.started call.ended")
    events        TEXT NOT NULL,
    secret        TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    -- 1: the customer's number is sent whole even where the project hides numbers
    full_numbers  INTEGER NOT NULL DEFAULT 0,
    -- set when a delivery failed for good (the administrators were told then), cleared by
    -- the next delivery the receiver takes: one notification per outage, not per event
    failing_since INTEGER,
    last_error    TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    -- the JSON body exactly as sent (signed when it is sent, with the endpoint's secret then)
    body            TEXT NOT NULL,
    -- pending (to send at next_attempt_at) / sent / failed (no more attempts)
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- the HTTP status of the last answer (none: no answer)
    last_status     INTEGER,
    error           TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);
