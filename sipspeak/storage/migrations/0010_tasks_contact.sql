-- «Кол-во задач» of the contacts report (§6.1) and the card's task list read a contact's
-- tasks: without this index every row of a report page scanned the whole tasks table.
CREATE INDEX tasks_contact ON tasks(contact_id);
