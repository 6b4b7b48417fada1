-- Leads sent to a project's CRM (Bitrix24, manual §5.2.7): an outbox, so a lead survives a
-- restart and a CRM that is down; one row per lead, its delivery state and the CRM's answer.
CREATE TABLE crm_leads (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    contact_id      INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- pending (to send at next_attempt_at) / sent / failed (no more attempts)
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    fields          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    crm_id          TEXT,
    error           TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX crm_leads_due ON crm_leads(state, next_attempt_at);
CREATE INDEX crm_leads_contact ON crm_leads(contact_id);
