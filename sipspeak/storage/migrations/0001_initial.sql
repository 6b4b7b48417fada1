-- SipSpeak schema, version 1: everything the admin manual describes.
-- Timestamps are UTC epoch milliseconds (INTEGER); calendar dates are ISO 'YYYY-MM-DD';
-- times of day are 'HH:MM'; money is integer kopecks; flags are 0/1.

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'operator')),
    full_name     TEXT NOT NULL,
    email         TEXT NOT NULL COLLATE NOCASE,
    phone         TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    extension     TEXT,
    sip_password  TEXT,
    trunk_id      INTEGER REFERENCES trunks(id) ON DELETE SET NULL,
    language      TEXT NOT NULL DEFAULT 'ru',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER
);
-- A removed user keeps his history; his e-mail and extension can be given to someone new.
CREATE UNIQUE INDEX users_email_live ON users(email) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_extension_live ON users(extension)
    WHERE deleted_at IS NULL AND extension IS NOT NULL;

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE statuses (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    color      TEXT NOT NULL DEFAULT '#9e9e9e',
    active     INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);

CREATE TABLE trunks (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    username           TEXT NOT NULL DEFAULT '',
    password           TEXT NOT NULL DEFAULT '',
    host               TEXT NOT NULL,
    inbound_project_id INTEGER REFERENCES projects(id) ON DELETE SET NULL,
    robot              INTEGER NOT NULL DEFAULT 0,
    active             INTEGER NOT NULL DEFAULT 1,
    price_per_minute_kopecks INTEGER NOT NULL DEFAULT 0,
    billing_increment_s      INTEGER NOT NULL DEFAULT 60,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE projects (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    deleted_at             INTEGER,
    -- tab "Проект"
    show_numbers           INTEGER NOT NULL DEFAULT 1,
    amd_enabled            INTEGER NOT NULL DEFAULT 0,
    amd_params             TEXT NOT NULL DEFAULT '{}',
    robot                  INTEGER NOT NULL DEFAULT 0,
    starts_on              TEXT,
    ends_on                TEXT,
    timezone               TEXT NOT NULL DEFAULT 'Europe/Moscow',
    client_time_from       TEXT NOT NULL DEFAULT '09:00',
    client_time_to         TEXT NOT NULL DEFAULT '21:00',
    caller_id              TEXT NOT NULL DEFAULT '',
    trunk_id               INTEGER REFERENCES trunks(id) ON DELETE SET NULL,
    -- tab "Очередь"
    queue_timeout_s        INTEGER NOT NULL DEFAULT 30,
    operator_timeout_s     INTEGER NOT NULL DEFAULT 15,
    strategy               TEXT NOT NULL DEFAULT 'ring_all'
        CHECK (strategy IN ('ring_all', 'round_robin', 'longest_idle', 'fewest_calls', 'linear')),
    operator_auto_answer   INTEGER NOT NULL DEFAULT 0,
    music_on_hold          INTEGER NOT NULL DEFAULT 1,
    supervisor_id          INTEGER REFERENCES users(id) ON DELETE SET NULL,
    operator_tasks_enabled INTEGER NOT NULL DEFAULT 0,
    -- tab "Попытки и тип набора"
    dial_timeout_s         INTEGER NOT NULL DEFAULT 30,
    global_timeout_enabled INTEGER NOT NULL DEFAULT 0,
    global_timeout_s       INTEGER NOT NULL DEFAULT 3600,
    max_concurrent_calls   INTEGER NOT NULL DEFAULT 10,
    dial_mode              TEXT NOT NULL DEFAULT 'progressive'
        CHECK (dial_mode IN ('unlimited', 'progressive', 'predictive')),
    predictive_percent     INTEGER NOT NULL DEFAULT 3,
    max_attempts           INTEGER NOT NULL DEFAULT 5,
    retry_busy_intervals      TEXT NOT NULL DEFAULT '15;60;1440;60',
    retry_busy_attempts       INTEGER NOT NULL DEFAULT 5,
    retry_no_answer_intervals TEXT NOT NULL DEFAULT '240;1380;162',
    retry_no_answer_attempts  INTEGER NOT NULL DEFAULT 3,
    retry_machine_intervals   TEXT NOT NULL DEFAULT '3360;1440;120',
    retry_machine_attempts    INTEGER NOT NULL DEFAULT 3,
    retry_lost_intervals      TEXT NOT NULL DEFAULT '1;2;4;6',
    retry_lost_attempts       INTEGER NOT NULL DEFAULT 4,
    -- tab "Скрипт оператора" (sanitised HTML)
    script_html            TEXT NOT NULL DEFAULT '',
    -- tab "Интеграция систем"
    crm_status_id          INTEGER REFERENCES statuses(id) ON DELETE SET NULL,
    bitrix_host            TEXT NOT NULL DEFAULT '',
    bitrix_title           TEXT NOT NULL DEFAULT '',
    bitrix_login           TEXT NOT NULL DEFAULT '',
    bitrix_password        TEXT NOT NULL DEFAULT '',
    bitrix_source_id       TEXT NOT NULL DEFAULT '',
    bitrix_assigned_by_id  TEXT NOT NULL DEFAULT '',
    sms_template           TEXT NOT NULL DEFAULT '',
    email_template         TEXT NOT NULL DEFAULT '',
    -- launch
    launched               INTEGER NOT NULL DEFAULT 0,
    call_from_end          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE project_groups (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    group_id   INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, group_id)
);

CREATE TABLE project_statuses (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    status_id  INTEGER NOT NULL REFERENCES statuses(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, status_id)
);

-- Custom fields of the client card ("Шаблон карточки клиента"); fixed fields are built in.
CREATE TABLE project_card_fields (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    position   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project_id, name)
);

-- "Дни недели и время звонка": weekday 0 = Monday … 6 = Sunday, call-center time zone.
CREATE TABLE project_intervals (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    weekday    INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_time TEXT NOT NULL,
    end_time   TEXT NOT NULL
);
CREATE INDEX project_intervals_project ON project_intervals(project_id);

-- "Задача на оператора": contacts in a status are assigned to an operator.
CREATE TABLE project_task_rules (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    operator_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status_id   INTEGER NOT NULL REFERENCES statuses(id) ON DELETE CASCADE
);

CREATE TABLE tags (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE uploads (
    id             INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    filename       TEXT NOT NULL,
    created_by     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at     INTEGER NOT NULL,
    rows_total     INTEGER NOT NULL DEFAULT 0,
    rows_accepted  INTEGER NOT NULL DEFAULT 0,
    rows_rejected  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE upload_tags (
    upload_id INTEGER NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    tag_id    INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (upload_id, tag_id)
);

CREATE TABLE contacts (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    upload_id       INTEGER REFERENCES uploads(id) ON DELETE SET NULL,
    phone           TEXT NOT NULL,
    full_name       TEXT,
    email           TEXT,
    birth_date      TEXT,
    position        TEXT,
    city            TEXT,
    address         TEXT,
    description     TEXT,
    custom          TEXT NOT NULL DEFAULT '{}',
    region          TEXT,
    timezone        TEXT,
    carrier         TEXT,
    status_id       INTEGER REFERENCES statuses(id) ON DELETE SET NULL,
    robot_status    TEXT,
    -- dialer state: new / called / no_answer / busy / error / machine / lost / done
    dial_state      TEXT NOT NULL DEFAULT 'new',
    operator_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_call_at    INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX contacts_project_phone ON contacts(project_id, phone);
CREATE INDEX contacts_due ON contacts(project_id, dial_state, next_attempt_at);
CREATE INDEX contacts_upload ON contacts(upload_id);
CREATE INDEX contacts_phone ON contacts(phone);

CREATE TABLE contact_tags (
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    tag_id     INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (contact_id, tag_id)
);
CREATE INDEX contact_tags_tag ON contact_tags(tag_id);

CREATE TABLE contact_comments (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX contact_comments_contact ON contact_comments(contact_id);

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    operator_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    text        TEXT NOT NULL DEFAULT '',
    due_at      INTEGER NOT NULL,
    auto_call   INTEGER NOT NULL DEFAULT 0,
    done_at     INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX tasks_due ON tasks(done_at, due_at);

-- One row per call: every column of the calls report ("Звонки").
CREATE TABLE calls (
    id                 INTEGER PRIMARY KEY,
    project_id         INTEGER REFERENCES projects(id) ON DELETE SET NULL,
    contact_id         INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    operator_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    trunk_id           INTEGER REFERENCES trunks(id) ON DELETE SET NULL,
    sip_call_id        TEXT,
    started_at         INTEGER NOT NULL,
    answered_at        INTEGER,
    bridged_at         INTEGER,
    ended_at           INTEGER,
    direction          TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    kind               TEXT NOT NULL DEFAULT 'auto' CHECK (kind IN ('auto', 'manual', 'robot', 'inbound', 'click')),
    contact_phone      TEXT NOT NULL DEFAULT '',
    from_number        TEXT NOT NULL DEFAULT '',
    to_number          TEXT NOT NULL DEFAULT '',
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    billing_ms         INTEGER NOT NULL DEFAULT 0,
    dial_ms            INTEGER NOT NULL DEFAULT 0,
    wait_ms            INTEGER NOT NULL DEFAULT 0,
    talk_ms            INTEGER NOT NULL DEFAULT 0,
    client_status      TEXT NOT NULL DEFAULT '',
    operator_status    TEXT NOT NULL DEFAULT '',
    contact_status_id  INTEGER REFERENCES statuses(id) ON DELETE SET NULL,
    region             TEXT,
    timezone           TEXT,
    result             TEXT NOT NULL DEFAULT '',
    sip_code           INTEGER,
    amd_result         TEXT,
    tags               TEXT NOT NULL DEFAULT '',
    robot_status       TEXT,
    price_kopecks      INTEGER NOT NULL DEFAULT 0,
    recording_path     TEXT
);
CREATE INDEX calls_started ON calls(started_at);
CREATE INDEX calls_project ON calls(project_id, started_at);
CREATE INDEX calls_contact ON calls(contact_id);
CREATE INDEX calls_open ON calls(ended_at) WHERE ended_at IS NULL;

-- Operator time in status (§6.3): one row per interval; ended_at NULL while it lasts.
CREATE TABLE operator_intervals (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    project_id INTEGER REFERENCES projects(id) ON DELETE SET NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER
);
CREATE INDEX operator_intervals_user ON operator_intervals(user_id, started_at);

CREATE TABLE blacklist (
    phone      TEXT PRIMARY KEY,
    comment    TEXT NOT NULL DEFAULT '',
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE folders (
    id         INTEGER PRIMARY KEY,
    parent_id  INTEGER REFERENCES folders(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX folders_name ON folders(COALESCE(parent_id, 0), name);

CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    folder_id   INTEGER REFERENCES folders(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    stored_name TEXT NOT NULL UNIQUE,
    size        INTEGER NOT NULL,
    created_by  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX files_name ON files(COALESCE(folder_id, 0), name);

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
    level      TEXT NOT NULL DEFAULT 'info',
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE INDEX notifications_user ON notifications(user_id, read_at);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
