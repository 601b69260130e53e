-- (SQLite; kept in step with ../postgres/0011_insurance.sql.)
-- The group's money under the insurance global budget (R9.1): budgets with their parameters
-- per group, year and fund; monthly prepayment runs and year-end settlements kept exactly as
-- computed. A run is never edited: a period is corrected by a further run that says which
-- one it corrects.

CREATE TABLE insurance_budget (
    id              INTEGER PRIMARY KEY,
    group_id        BIGINT NOT NULL REFERENCES med_group(id),
    year            INTEGER NOT NULL,
    fund            TEXT NOT NULL,
    amount_fen      BIGINT NOT NULL,
    -- Whether the group's residents' spending outside the group is charged to it.
    charge_outflow  BOOLEAN NOT NULL,
    -- The prepayment rule and the settlement rule in force for the year (JSON).
    prepayment_rule TEXT NOT NULL,
    settlement_rule TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    CONSTRAINT uq_insurance_budget UNIQUE (group_id, year, fund)
);

CREATE TABLE prepayment_run (
    id            INTEGER PRIMARY KEY,
    group_id      BIGINT NOT NULL REFERENCES med_group(id),
    year          INTEGER NOT NULL,
    fund          TEXT NOT NULL,
    month         INTEGER NOT NULL,
    -- 1 for the month's run, 2… for each correcting run.
    seq           INTEGER NOT NULL,
    corrects_id   BIGINT REFERENCES prepayment_run(id),
    month_budget  BIGINT NOT NULL,
    gross         BIGINT NOT NULL,
    outflow       BIGINT NOT NULL,
    deposit       BIGINT NOT NULL,
    due           BIGINT NOT NULL,
    -- The statement's lines and the parameters used (JSON), so a run reads as computed.
    steps         TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    reason        TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    CONSTRAINT uq_prepayment_run UNIQUE (group_id, year, fund, month, seq)
);

CREATE TABLE settlement_run (
    id          INTEGER PRIMARY KEY,
    group_id    BIGINT NOT NULL REFERENCES med_group(id),
    year        INTEGER NOT NULL,
    fund        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    score       BIGINT NOT NULL,
    due         BIGINT NOT NULL,
    statement   TEXT NOT NULL,
    parameters  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    CONSTRAINT uq_settlement_run UNIQUE (group_id, year, fund, seq)
);

-- Spending by group, fund and day settled, with the place and the amount: prepayment and
-- settlement read this index alone, never the claims themselves.
CREATE INDEX ix_claim_group_fund_settled ON claim (group_id, fund, settled_on, in_group, insurance_paid_fen);

CREATE TRIGGER prepayment_run_no_update BEFORE UPDATE ON prepayment_run
BEGIN SELECT RAISE(ABORT, 'prepayment runs are immutable'); END;
CREATE TRIGGER prepayment_run_no_delete BEFORE DELETE ON prepayment_run
BEGIN SELECT RAISE(ABORT, 'prepayment runs are immutable'); END;
CREATE TRIGGER settlement_run_no_update BEFORE UPDATE ON settlement_run
BEGIN SELECT RAISE(ABORT, 'settlements are immutable'); END;
CREATE TRIGGER settlement_run_no_delete BEFORE DELETE ON settlement_run
BEGIN SELECT RAISE(ABORT, 'settlements are immutable'); END;
