-- Group registry, accounts and the audit log (SQLite).
-- Kept in step with ../postgres/0001_registry.sql: same tables, columns and constraint names.

CREATE TABLE city (
    id            INTEGER PRIMARY KEY,
    division_code TEXT NOT NULL CONSTRAINT uq_city_division_code UNIQUE,
    name          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE grid (
    id            INTEGER PRIMARY KEY,
    city_id       INTEGER NOT NULL REFERENCES city(id),
    code          TEXT NOT NULL,
    name          TEXT NOT NULL,
    division_code TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    CONSTRAINT uq_grid_code UNIQUE (city_id, code)
);

-- A group is the tenant: every business table carries group_id.
CREATE TABLE med_group (
    id         INTEGER PRIMARY KEY,
    city_id    INTEGER NOT NULL REFERENCES city(id),
    grid_id    INTEGER NOT NULL REFERENCES grid(id),
    code       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT uq_med_group_code UNIQUE (city_id, code),
    CONSTRAINT uq_med_group_grid UNIQUE (grid_id)
);

CREATE TABLE unit (
    id             INTEGER PRIMARY KEY,
    city_id        INTEGER NOT NULL REFERENCES city(id),
    grid_id        INTEGER REFERENCES grid(id),
    group_id       INTEGER REFERENCES med_group(id),
    parent_unit_id INTEGER REFERENCES unit(id),
    code           TEXT NOT NULL,
    legal_name     TEXT NOT NULL,
    second_name    TEXT,
    role           TEXT NOT NULL,
    level          TEXT NOT NULL,
    division_code  TEXT,
    uscc           TEXT CONSTRAINT uq_unit_uscc UNIQUE,
    uscc_warning   TEXT,
    beds           BIGINT,
    public         BOOLEAN NOT NULL,
    services       TEXT NOT NULL,
    note           TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CONSTRAINT uq_unit_code UNIQUE (city_id, code)
);
CREATE INDEX ix_unit_group ON unit (group_id);
-- The database itself refuses a second lead hospital in a group, even under concurrency.
CREATE UNIQUE INDEX uq_unit_group_lead ON unit (group_id) WHERE role = 'lead';

CREATE TABLE department (
    id         INTEGER PRIMARY KEY,
    unit_id    INTEGER NOT NULL REFERENCES unit(id),
    group_id   INTEGER REFERENCES med_group(id),
    code       TEXT NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    beds       BIGINT,
    created_at TEXT NOT NULL,
    CONSTRAINT uq_department_code UNIQUE (unit_id, code)
);

CREATE TABLE practitioner (
    id         INTEGER PRIMARY KEY,
    city_id    INTEGER NOT NULL REFERENCES city(id),
    licence_no TEXT NOT NULL CONSTRAINT uq_practitioner_licence_no UNIQUE,
    name       TEXT NOT NULL,
    sex        TEXT NOT NULL,
    title      TEXT NOT NULL,
    specialty  TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE practice_site (
    id              INTEGER PRIMARY KEY,
    practitioner_id INTEGER NOT NULL REFERENCES practitioner(id),
    unit_id         INTEGER NOT NULL REFERENCES unit(id),
    group_id        INTEGER REFERENCES med_group(id),
    department_id   INTEGER REFERENCES department(id),
    is_primary      BOOLEAN NOT NULL,
    created_at      TEXT NOT NULL,
    CONSTRAINT uq_practice_site_unit UNIQUE (practitioner_id, unit_id)
);
CREATE UNIQUE INDEX uq_practice_site_primary ON practice_site (practitioner_id) WHERE is_primary;

CREATE TABLE app_user (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL CONSTRAINT uq_app_user_username UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    scope_kind    TEXT NOT NULL,
    city_id       INTEGER NOT NULL REFERENCES city(id),
    grid_id       INTEGER REFERENCES grid(id),
    group_id      INTEGER REFERENCES med_group(id),
    unit_id       INTEGER REFERENCES unit(id),
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE api_token (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES app_user(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL CONSTRAINT uq_api_token_token_hash UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE web_session (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES app_user(id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE login_throttle (
    throttle_key     TEXT PRIMARY KEY,
    failures         BIGINT NOT NULL,
    first_failure_at TEXT NOT NULL,
    locked_until     TEXT
);

CREATE TABLE audit_event (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    actor_user_id   INTEGER,
    actor_username  TEXT NOT NULL,
    actor_role      TEXT,
    actor_unit_id   INTEGER,
    actor_group_id  INTEGER,
    action          TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT,
    city_id         INTEGER,
    group_id        INTEGER,
    unit_id         INTEGER,
    outcome         TEXT NOT NULL,
    detail          TEXT,
    client_ip       TEXT
);
CREATE INDEX ix_audit_event_at ON audit_event (at);
CREATE INDEX ix_audit_event_city ON audit_event (city_id, id);
CREATE INDEX ix_audit_event_group ON audit_event (group_id, id);
CREATE INDEX ix_audit_event_unit ON audit_event (unit_id, id);

-- The audit log is append-only: the database refuses to change or remove an entry.
CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
