-- «Сообщение при отсутствии свободных операторов»: a recording (a WAV of the file manager)
-- played to a customer no operator took within the queue timeout, before the call is
-- released; NULL = released at once.
ALTER TABLE projects ADD COLUMN abandon_message_file_id INTEGER REFERENCES files(id) ON DELETE SET NULL;
