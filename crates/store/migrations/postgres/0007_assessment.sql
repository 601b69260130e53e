-- Assessment of members (R11.2): the groups' own schemes, versioned, and the reports of each
-- run, kept as computed (scheme and results as JSON) and never changed afterwards.
-- Kept in step with ../sqlite/0007_assessment.sql.

CREATE TABLE assessment_scheme (
    id         BIGSERIAL PRIMARY KEY,
    group_id   BIGINT NOT NULL REFERENCES med_group(id),
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_by BIGINT REFERENCES app_user(id),
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_assessment_scheme_version UNIQUE (group_id, version)
);

CREATE TABLE assessment_run (
    id                BIGSERIAL PRIMARY KEY,
    group_id          BIGINT NOT NULL REFERENCES med_group(id),
    period            TEXT NOT NULL,
    scheme_version    BIGINT NOT NULL,
    scheme            TEXT NOT NULL,
    results           TEXT NOT NULL,
    cube_refreshed_at TIMESTAMPTZ,
    created_by        BIGINT REFERENCES app_user(id),
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_assessment_run_group ON assessment_run (group_id, id);

-- A report is what was computed that day: no edits, no deletions.
CREATE FUNCTION assessment_run_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'assessment reports are immutable'; END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER assessment_run_no_change BEFORE UPDATE OR DELETE ON assessment_run
FOR EACH ROW EXECUTE FUNCTION assessment_run_immutable();
