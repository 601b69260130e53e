-- Outpatient sessions of clinicians, their slots (some reserved for referrals, R5.1) and the
-- bookings that take them. A slot is taken by one conditional UPDATE; the partial unique index
-- below makes a second live booking of one slot impossible even if code were wrong.
CREATE TABLE care_session (
    id               INTEGER PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    unit_id          BIGINT NOT NULL REFERENCES unit(id),
    department_code  TEXT NOT NULL,
    practitioner_id  BIGINT REFERENCES practitioner(id),
    starts_at        TEXT NOT NULL,
    slot_minutes     INTEGER NOT NULL,
    capacity         INTEGER NOT NULL,
    reserved         INTEGER NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX ix_care_session_unit_start ON care_session (unit_id, starts_at);

CREATE TABLE slot (
    id          INTEGER PRIMARY KEY,
    group_id    BIGINT NOT NULL REFERENCES med_group(id),
    session_id  BIGINT NOT NULL REFERENCES care_session(id),
    starts_at   TEXT NOT NULL,
    reserved    BOOLEAN NOT NULL,
    status      TEXT NOT NULL
);
CREATE INDEX ix_slot_session ON slot (session_id, starts_at);

CREATE TABLE booking (
    id               INTEGER PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES med_group(id),
    slot_id          BIGINT NOT NULL REFERENCES slot(id),
    resident_id      BIGINT NOT NULL REFERENCES resident(id),
    referral_id      BIGINT REFERENCES referral(id),
    kind             TEXT NOT NULL,
    reference        TEXT NOT NULL CONSTRAINT uq_booking_reference UNIQUE,
    idempotency_key  TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX uq_booking_idempotency ON booking (group_id, idempotency_key);
CREATE UNIQUE INDEX uq_booking_live_slot ON booking (slot_id) WHERE status = 'booked';
