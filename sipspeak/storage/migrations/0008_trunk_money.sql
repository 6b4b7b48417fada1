-- Money per trunk: the balance of the trunk's account at the provider and what its calls cost.
-- An administrator records the balance (set it, or top it up); records are never changed, so
-- the history is kept. Each record holds the balance right after it and the trunk's total
-- spend at that moment; the balance now is the last record's balance minus what the trunk's
-- calls priced since then cost (trunk_accounts.spent_kopecks - spent_mark_kopecks): one row
-- per trunk to read, however many calls there are.

CREATE TABLE trunk_accounts (
    trunk_id            INTEGER PRIMARY KEY REFERENCES trunks(id) ON DELETE CASCADE,
    spent_kopecks       INTEGER NOT NULL DEFAULT 0,
    low_balance_kopecks INTEGER,
    low_notified        INTEGER NOT NULL DEFAULT 0
);
-- spent_kopecks: the prices of all the trunk's calls, kept by the triggers below.
-- low_balance_kopecks: the administrators are told once when the balance falls below it
-- (NULL: never); low_notified: they were told and the balance has not risen above it since.
INSERT INTO trunk_accounts(trunk_id, spent_kopecks)
    SELECT t.id, COALESCE((SELECT SUM(c.price_kopecks) FROM calls c WHERE c.trunk_id = t.id), 0)
    FROM trunks t;

CREATE TABLE trunk_balance_records (
    id                 INTEGER PRIMARY KEY,
    trunk_id           INTEGER NOT NULL REFERENCES trunks(id) ON DELETE CASCADE,
    kind               TEXT NOT NULL CHECK (kind IN ('set', 'topup')),
    amount_kopecks     INTEGER NOT NULL,
    balance_kopecks    INTEGER NOT NULL,
    spent_mark_kopecks INTEGER NOT NULL,
    comment            TEXT NOT NULL DEFAULT '',
    user_id            INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX trunk_balance_records_trunk ON trunk_balance_records(trunk_id, id);

-- A call is priced when it ends (calls/cdr.py); its price is added to its trunk's spend.
-- Deleting a call row does not give the money back, so there is no DELETE trigger.
CREATE TRIGGER calls_spend_insert AFTER INSERT ON calls
WHEN NEW.trunk_id IS NOT NULL AND NEW.price_kopecks <> 0
BEGIN
    INSERT OR IGNORE INTO trunk_accounts(trunk_id) VALUES (NEW.trunk_id);
    UPDATE trunk_accounts SET spent_kopecks = spent_kopecks + NEW.price_kopecks
        WHERE trunk_id = NEW.trunk_id;
END;

CREATE TRIGGER calls_spend_update AFTER UPDATE OF price_kopecks, trunk_id ON calls
WHEN NEW.price_kopecks IS NOT OLD.price_kopecks OR NEW.trunk_id IS NOT OLD.trunk_id
BEGIN
    UPDATE trunk_accounts SET spent_kopecks = spent_kopecks - OLD.price_kopecks
        WHERE trunk_id = OLD.trunk_id;
    INSERT OR IGNORE INTO trunk_accounts(trunk_id)
        SELECT NEW.trunk_id WHERE NEW.trunk_id IS NOT NULL;
    UPDATE trunk_accounts SET spent_kopecks = spent_kopecks + NEW.price_kopecks
        WHERE trunk_id = NEW.trunk_id;
END;

-- «Расход (день)»: the prices of a day's calls (by start, as the calls report filters them),
-- read from this index alone over that day's range.
CREATE INDEX calls_spend ON calls(started_at, trunk_id, price_kopecks);
