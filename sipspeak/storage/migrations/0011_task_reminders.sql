-- «Дата оповещения» of a task (manual §6.1.1): when its reminder went to the bell (once, across
-- restarts), and who created the task (he is reminded of a task for nobody).
ALTER TABLE tasks ADD COLUMN reminded_at INTEGER;
ALTER TABLE tasks ADD COLUMN created_by INTEGER REFERENCES users(id) ON DELETE SET NULL;
-- Tasks due before reminders existed are not all reminded at once on the first start.
UPDATE tasks SET reminded_at = due_at
 WHERE due_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000;
-- The reminders waiting, earliest first.
CREATE INDEX tasks_reminders ON tasks(reminded_at, done_at, due_at);
