-- The live referral workflow (R4, R5): referrals written by people rather than generated, their
-- timestamped events, attachments, the groups' versioned catalogues, notifications, weekly
-- schedules that open sessions, slot holds, the group bed pool and the no-slot waitlist.

-- A live referral has no source encounter (it is written before the visit it asks for) and may
-- be addressed to "any unit of the group with capacity" until the coordinator routes it.
-- SQLite cannot relax NOT NULL in place: the table is rebuilt (run with foreign keys off, and
-- checked with foreign_key_check before commit).
CREATE TABLE referral_new (
    id                   INTEGER PRIMARY KEY,
    resident_id          INTEGER NOT NULL REFERENCES resident(id),
    group_id             INTEGER NOT NULL REFERENCES med_group(id),
    direction            TEXT NOT NULL,
    priority             TEXT NOT NULL,
    from_unit_id         INTEGER NOT NULL REFERENCES unit(id),
    from_practitioner_id INTEGER REFERENCES practitioner(id),
    to_unit_id           INTEGER REFERENCES unit(id),
    to_department_code   TEXT,
    diagnosis            TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    status               TEXT NOT NULL,
    source_encounter_id  INTEGER REFERENCES encounter(id),
    result_encounter_id  INTEGER REFERENCES encounter(id),
    kind                 TEXT NOT NULL DEFAULT 'referral',
    reason               TEXT,
    summary              TEXT,
    care_plan            TEXT,
    outcome_summary      TEXT,
    outside_catalogue_reason TEXT,
    patient_choice       BOOLEAN NOT NULL DEFAULT FALSE,
    continuous_deductible BOOLEAN NOT NULL DEFAULT FALSE,
    coordinator_id       INTEGER REFERENCES app_user(id),
    created_by           INTEGER REFERENCES app_user(id),
    decline_reason       TEXT,
    declined_by_practitioner_id INTEGER REFERENCES practitioner(id),
    suggested_unit_id    INTEGER REFERENCES unit(id),
    advice_id            INTEGER REFERENCES referral(id),
    up_referral_id       INTEGER REFERENCES referral(id),
    updated_at           TEXT,
    escalated_at         TEXT,
    escalation           TEXT
);
INSERT INTO referral_new (id, resident_id, group_id, direction, priority, from_unit_id,
    from_practitioner_id, to_unit_id, to_department_code, diagnosis, requested_at, status,
    source_encounter_id, result_encounter_id)
SELECT id, resident_id, group_id, direction, priority, from_unit_id, from_practitioner_id,
    to_unit_id, to_department_code, diagnosis, requested_at, status, source_encounter_id,
    result_encounter_id FROM referral;
DROP TABLE referral;
ALTER TABLE referral_new RENAME TO referral;
CREATE INDEX ix_referral_group_requested ON referral (group_id, requested_at);
CREATE INDEX ix_referral_to_unit_status ON referral (to_unit_id, status);
CREATE INDEX ix_referral_from_unit_status ON referral (from_unit_id, status);

CREATE TABLE referral_event (
    id           INTEGER PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    referral_id  BIGINT NOT NULL REFERENCES referral(id),
    at           TEXT NOT NULL,
    transition   TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    party        TEXT NOT NULL,
    user_id      BIGINT REFERENCES app_user(id),
    note         TEXT
);
CREATE INDEX ix_referral_event_referral ON referral_event (referral_id, at);

CREATE TABLE referral_attachment (
    id           INTEGER PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    referral_id  BIGINT NOT NULL REFERENCES referral(id),
    file_name    TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content      BLOB NOT NULL,
    uploaded_by  BIGINT REFERENCES app_user(id),
    uploaded_at  TEXT NOT NULL
);
CREATE INDEX ix_referral_attachment_referral ON referral_attachment (referral_id);

-- One row per published version of one catalogue of one group; entries are never edited, a
-- change publishes the next version.
CREATE TABLE referral_catalogue (
    id            INTEGER PRIMARY KEY,
    group_id      BIGINT NOT NULL REFERENCES med_group(id),
    kind          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    published_at  TEXT NOT NULL,
    published_by  BIGINT REFERENCES app_user(id),
    note          TEXT,
    CONSTRAINT uq_referral_catalogue_version UNIQUE (group_id, kind, version)
);

CREATE TABLE catalogue_entry (
    id            INTEGER PRIMARY KEY,
    catalogue_id  BIGINT NOT NULL REFERENCES referral_catalogue(id),
    position      BIGINT NOT NULL,
    code_from     TEXT,
    code_to       TEXT,
    label         TEXT NOT NULL
);
CREATE INDEX ix_catalogue_entry_catalogue ON catalogue_entry (catalogue_id, position);

CREATE TABLE notification (
    id           INTEGER PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    referral_id  BIGINT REFERENCES referral(id),
    user_id      BIGINT REFERENCES app_user(id),
    unit_id      BIGINT REFERENCES unit(id),
    audience     TEXT NOT NULL,
    text_zh      TEXT NOT NULL,
    text_en      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    read_at      TEXT,
    channel      TEXT NOT NULL,
    delivery     TEXT NOT NULL
);
CREATE INDEX ix_notification_user ON notification (user_id, created_at);
CREATE INDEX ix_notification_unit ON notification (unit_id, created_at);

-- A clinic's weekly timetable; sessions are opened from it ahead of the release window.
CREATE TABLE care_schedule (
    id               INTEGER PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    unit_id          BIGINT NOT NULL REFERENCES unit(id),
    department_code  TEXT NOT NULL,
    practitioner_id  BIGINT REFERENCES practitioner(id),
    weekday          INTEGER NOT NULL,
    start_time       TEXT NOT NULL,
    slot_minutes     INTEGER NOT NULL,
    capacity         INTEGER NOT NULL,
    reserved         INTEGER NOT NULL,
    expert_visit     BOOLEAN NOT NULL,
    created_at       TEXT NOT NULL
);
ALTER TABLE care_session ADD COLUMN schedule_id BIGINT REFERENCES care_schedule(id);
CREATE UNIQUE INDEX uq_care_session_schedule ON care_session (schedule_id, starts_at) WHERE schedule_id IS NOT NULL;

-- A hold keeps a slot for one booker until it lapses.
ALTER TABLE slot ADD COLUMN hold_until TEXT;
ALTER TABLE slot ADD COLUMN hold_token TEXT;
ALTER TABLE slot ADD COLUMN hold_referral_id BIGINT REFERENCES referral(id);

-- A referral holds at most one live booking.
CREATE UNIQUE INDEX uq_booking_live_referral ON booking (referral_id) WHERE status = 'booked' AND referral_id IS NOT NULL;
ALTER TABLE booking ADD COLUMN cancelled_at TEXT;

-- The group bed pool (集团一张床): wards of every unit, and admissions booked for a day.
CREATE TABLE ward (
    id               INTEGER PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    unit_id          BIGINT NOT NULL REFERENCES unit(id),
    department_code  TEXT NOT NULL,
    name             TEXT NOT NULL,
    beds             INTEGER NOT NULL,
    reserved_beds    INTEGER NOT NULL,
    created_at       TEXT NOT NULL
);

CREATE TABLE bed_booking (
    id               INTEGER PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    ward_id          BIGINT NOT NULL REFERENCES ward(id),
    admit_on         TEXT NOT NULL,
    bed_no           INTEGER NOT NULL,
    reserved         BOOLEAN NOT NULL,
    resident_id      BIGINT NOT NULL REFERENCES resident(id),
    referral_id      BIGINT REFERENCES referral(id),
    kind             TEXT NOT NULL,
    reference        TEXT NOT NULL CONSTRAINT uq_bed_booking_reference UNIQUE,
    idempotency_key  TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX uq_bed_booking_live_bed ON bed_booking (ward_id, admit_on, bed_no) WHERE status = 'booked';
CREATE UNIQUE INDEX uq_bed_booking_idempotency ON bed_booking (group_id, idempotency_key);

-- Referrals for which no slot could be found: offered freed slots, green channel first.
CREATE TABLE waitlist (
    id               INTEGER PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    referral_id      BIGINT NOT NULL REFERENCES referral(id),
    unit_id          BIGINT NOT NULL REFERENCES unit(id),
    department_code  TEXT NOT NULL,
    priority         TEXT NOT NULL,
    deadline         TEXT NOT NULL,
    status           TEXT NOT NULL,
    offered_slot_id  BIGINT REFERENCES slot(id),
    created_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX uq_waitlist_open_referral ON waitlist (referral_id) WHERE status IN ('waiting', 'offered');
CREATE INDEX ix_waitlist_place ON waitlist (unit_id, department_code, status);

-- A down-referral leaves a task on the family doctor's list.
ALTER TABLE follow_up ADD COLUMN referral_id BIGINT REFERENCES referral(id);
ALTER TABLE follow_up ADD COLUMN note TEXT;
