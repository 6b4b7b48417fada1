-- Lookups that run on every workspace push and card: an operator's latest calls, the calls
-- of a number («Показать звонки»), an operator's open tasks. Without these each was a scan
-- of the whole table.
CREATE INDEX calls_operator ON calls(operator_id, started_at);
CREATE INDEX calls_phone ON calls(contact_phone, started_at);
CREATE INDEX tasks_operator ON tasks(operator_id, done_at, due_at);
