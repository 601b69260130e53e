-- The live referral workflow (R4, R5): referrals written by people rather than generated, their
-- timestamped events, attachments, the groups' versioned catalogues, notifications, weekly
-- schedules that open sessions, slot holds, the group bed pool and the no-slot waitlist.

-- A live referral has no source encounter (it is written before the visit it asks for) and may
-- be addressed to "any unit of the group with capacity" until the coordinator routes it.
ALTER TABLE referral ALTER COLUMN source_encounter_id DROP NOT NULL;
ALTER TABLE referral ALTER COLUMN to_unit_id DROP NOT NULL;
ALTER TABLE referral ADD COLUMN kind TEXT NOT NULL DEFAULT 'referral';
ALTER TABLE referral ADD COLUMN reason TEXT;
ALTER TABLE referral ADD COLUMN summary TEXT;
ALTER TABLE referral ADD COLUMN care_plan TEXT;
ALTER TABLE referral ADD COLUMN outcome_summary TEXT;
ALTER TABLE referral ADD COLUMN outside_catalogue_reason TEXT;
ALTER TABLE referral ADD COLUMN patient_choice BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE referral ADD COLUMN continuous_deductible BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE referral ADD COLUMN coordinator_id BIGINT REFERENCES app_user(id);
ALTER TABLE referral ADD COLUMN created_by BIGINT REFERENCES app_user(id);
ALTER TABLE referral ADD COLUMN decline_reason TEXT;
ALTER TABLE referral ADD COLUMN declined_by_practitioner_id BIGINT REFERENCES practitioner(id);
ALTER TABLE referral ADD COLUMN suggested_unit_id BIGINT REFERENCES unit(id);
ALTER TABLE referral ADD COLUMN advice_id BIGINT REFERENCES referral(id);
ALTER TABLE referral ADD COLUMN up_referral_id BIGINT REFERENCES referral(id);
ALTER TABLE referral ADD COLUMN updated_at TIMESTAMP;
ALTER TABLE referral ADD COLUMN escalated_at TIMESTAMP;
ALTER TABLE referral ADD COLUMN escalation TEXT;
-- Generated referrals bring their own ids; live ones take the next (the loader moves it on).
CREATE SEQUENCE referral_id_seq OWNED BY referral.id;
ALTER TABLE referral ALTER COLUMN id SET DEFAULT nextval('referral_id_seq');
CREATE INDEX ix_referral_to_unit_status ON referral (to_unit_id, status);
CREATE INDEX ix_referral_from_unit_status ON referral (from_unit_id, status);

CREATE TABLE referral_event (
    id           BIGSERIAL PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    referral_id  BIGINT NOT NULL REFERENCES referral(id),
    at           TIMESTAMP NOT NULL,
    transition   TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    party        TEXT NOT NULL,
    user_id      BIGINT REFERENCES app_user(id),
    note         TEXT
);
CREATE INDEX ix_referral_event_referral ON referral_event (referral_id, at);

CREATE TABLE referral_attachment (
    id           BIGSERIAL PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    referral_id  BIGINT NOT NULL REFERENCES referral(id),
    file_name    TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content      BYTEA NOT NULL,
    uploaded_by  BIGINT REFERENCES app_user(id),
    uploaded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_referral_attachment_referral ON referral_attachment (referral_id);

-- One row per published version of one catalogue of one group; entries are never edited, a
-- change publishes the next version.
CREATE TABLE referral_catalogue (
    id            BIGSERIAL PRIMARY KEY,
    group_id      BIGINT NOT NULL REFERENCES med_group(id),
    kind          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    published_by  BIGINT REFERENCES app_user(id),
    note          TEXT,
    CONSTRAINT uq_referral_catalogue_version UNIQUE (group_id, kind, version)
);

CREATE TABLE catalogue_entry (
    id            BIGSERIAL PRIMARY KEY,
    catalogue_id  BIGINT NOT NULL REFERENCES referral_catalogue(id),
    position      BIGINT NOT NULL,
    code_from     TEXT,
    code_to       TEXT,
    label         TEXT NOT NULL
);
CREATE INDEX ix_catalogue_entry_catalogue ON catalogue_entry (catalogue_id, position);

CREATE TABLE notification (
    id           BIGSERIAL PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    referral_id  BIGINT REFERENCES referral(id),
    user_id      BIGINT REFERENCES app_user(id),
    unit_id      BIGINT REFERENCES unit(id),
    audience     TEXT NOT NULL,
    text_zh      TEXT NOT NULL,
    text_en      TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    read_at      TIMESTAMP,
    channel      TEXT NOT NULL,
    delivery     TEXT NOT NULL
);
CREATE INDEX ix_notification_user ON notification (user_id, created_at);
CREATE INDEX ix_notification_unit ON notification (unit_id, created_at);

-- A clinic's weekly timetable; sessions are opened from it ahead of the release window.
CREATE TABLE care_schedule (
    id               BIGSERIAL PRIMARY KEY,
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
    created_at       TIMESTAMPTZ NOT NULL
);
ALTER TABLE care_session ADD COLUMN schedule_id BIGINT REFERENCES care_schedule(id);
CREATE UNIQUE INDEX uq_care_session_schedule ON care_session (schedule_id, starts_at) WHERE schedule_id IS NOT NULL;

-- A hold keeps a slot for one booker until it lapses.
ALTER TABLE slot ADD COLUMN hold_until TIMESTAMP;
ALTER TABLE slot ADD COLUMN hold_token TEXT;
ALTER TABLE slot ADD COLUMN hold_referral_id BIGINT REFERENCES referral(id);

-- A referral holds at most one live booking.
CREATE UNIQUE INDEX uq_booking_live_referral ON booking (referral_id) WHERE status = 'booked' AND referral_id IS NOT NULL;
ALTER TABLE booking ADD COLUMN cancelled_at TIMESTAMPTZ;

-- The group bed pool (集团一张床): wards of every unit, and admissions booked for a day.
CREATE TABLE ward (
    id               BIGSERIAL PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    unit_id          BIGINT NOT NULL REFERENCES unit(id),
    department_code  TEXT NOT NULL,
    name             TEXT NOT NULL,
    beds             INTEGER NOT NULL,
    reserved_beds    INTEGER NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE bed_booking (
    id               BIGSERIAL PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    ward_id          BIGINT NOT NULL REFERENCES ward(id),
    admit_on         DATE NOT NULL,
    bed_no           INTEGER NOT NULL,
    reserved         BOOLEAN NOT NULL,
    resident_id      BIGINT NOT NULL REFERENCES resident(id),
    referral_id      BIGINT REFERENCES referral(id),
    kind             TEXT NOT NULL,
    reference        TEXT NOT NULL CONSTRAINT uq_bed_booking_reference UNIQUE,
    idempotency_key  TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX uq_bed_booking_live_bed ON bed_booking (ward_id, admit_on, bed_no) WHERE status = 'booked';
CREATE UNIQUE INDEX uq_bed_booking_idempotency ON bed_booking (group_id, idempotency_key);

-- Referrals for which no slot could be found: offered freed slots, green channel first.
CREATE TABLE waitlist (
    id               BIGSERIAL PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    referral_id      BIGINT NOT NULL REFERENCES referral(id),
    unit_id          BIGINT NOT NULL REFERENCES unit(id),
    department_code  TEXT NOT NULL,
    priority         TEXT NOT NULL,
    deadline         TIMESTAMP NOT NULL,
    status           TEXT NOT NULL,
    offered_slot_id  BIGINT REFERENCES slot(id),
    created_at       TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX uq_waitlist_open_referral ON waitlist (referral_id) WHERE status IN ('waiting', 'offered');
CREATE INDEX ix_waitlist_place ON waitlist (unit_id, department_code, status);

-- A down-referral leaves a task on the family doctor's list.
ALTER TABLE follow_up ADD COLUMN referral_id BIGINT REFERENCES referral(id);
ALTER TABLE follow_up ADD COLUMN note TEXT;
CREATE SEQUENCE follow_up_id_seq OWNED BY follow_up.id;
ALTER TABLE follow_up ALTER COLUMN id SET DEFAULT nextval('follow_up_id_seq');
