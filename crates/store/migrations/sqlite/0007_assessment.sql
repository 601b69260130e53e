-- Assessment of members (R11.2): the groups' own schemes, versioned, and the reports of each
-- run, kept as computed (scheme and results as JSON) and never changed afterwards.
-- Kept in step with ../postgres/0007_assessment.sql.

CREATE TABLE assessment_scheme (
    id         INTEGER PRIMARY KEY,
    group_id   BIGINT NOT NULL REFERENCES med_group(id),
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_by BIGINT REFERENCES app_user(id),
    created_at TEXT NOT NULL,
    CONSTRAINT uq_assessment_scheme_version UNIQUE (group_id, version)
);

CREATE TABLE assessment_run (
    id                INTEGER PRIMARY KEY,
    group_id          BIGINT NOT NULL REFERENCES med_group(id),
    period            TEXT NOT NULL,
    scheme_version    BIGINT NOT NULL,
    scheme            TEXT NOT NULL,
    results           TEXT NOT NULL,
    cube_refreshed_at TEXT,
    created_by        BIGINT REFERENCES app_user(id),
    created_at        TEXT NOT NULL
);
CREATE INDEX ix_assessment_run_group ON assessment_run (group_id, id);

-- A report is what was computed that day: no edits, no deletions.
CREATE TRIGGER assessment_run_no_update BEFORE UPDATE ON assessment_run
BEGIN SELECT RAISE(ABORT, 'assessment reports are immutable'); END;
CREATE TRIGGER assessment_run_no_delete BEFORE DELETE ON assessment_run
BEGIN SELECT RAISE(ABORT, 'assessment reports are immutable'); END;
