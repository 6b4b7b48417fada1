-- Registrations of operators' SIP phones (RFC 3261 §10.3 bindings), kept so that a restart
-- of the service does not leave every phone unreachable until its next REGISTER (desk phones
-- re-register every 10–60 minutes). Only bindings reached over UDP are restored: a TCP or
-- WebSocket connection does not survive the restart, and those phones reconnect on their own.
-- credentials_tag ties a binding to the SIP credentials it was made with: a binding made
-- before the operator's SIP password or extension changed is not restored.
CREATE TABLE phone_bindings (
    extension     TEXT NOT NULL,
    contact       TEXT NOT NULL,              -- the Contact as registered, without ;expires
    expires_at    INTEGER NOT NULL,           -- wall clock, ms since the epoch
    q             TEXT,                       -- ;q= as registered (decimal text) or NULL
    call_id       TEXT NOT NULL,
    cseq          INTEGER NOT NULL,
    source        TEXT,                       -- where the REGISTER came from: "UDP host port"
    user_agent    TEXT,
    credentials_tag TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (extension, contact)
);
