-- An upload is written batch by batch so that an import does not hold the database's single
-- writer for its whole length. While its batches are being written the upload is 'importing':
-- the dialer skips its contacts, and an import that fails (or a process that stops mid-import)
-- has the upload and its contacts removed, so nothing half-imported remains.
ALTER TABLE uploads ADD COLUMN state TEXT NOT NULL DEFAULT 'done'
    CHECK (state IN ('importing', 'done'));
CREATE INDEX uploads_importing ON uploads(state) WHERE state = 'importing';
