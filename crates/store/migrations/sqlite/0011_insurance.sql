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
    -- The prepayment, settlement and case-payment (DIP) rules in force for the year (JSON).
    prepayment_rule TEXT NOT NULL,
    settlement_rule TEXT NOT NULL,
    case_rule       TEXT NOT NULL,
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

-- DIP runs (R9.2): a month's provisional run (month 1–12) or the year's final one (month 0),
-- each case's numbers kept in case_payment so that any payment can be traced. A period is
-- run again only as a further run (seq 2, …) with a reason; the latest is in force.
CREATE TABLE case_payment_run (
    id           INTEGER PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES med_group(id),
    year         INTEGER NOT NULL,
    fund         TEXT NOT NULL,
    month        INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    reason       TEXT,
    cases        BIGINT NOT NULL,
    budget       BIGINT NOT NULL,
    pool         BIGINT NOT NULL,
    reserve      BIGINT NOT NULL,
    total_points BIGINT NOT NULL,
    all_mean     BIGINT NOT NULL,
    gross        BIGINT NOT NULL,
    paid         BIGINT NOT NULL,
    -- The period's DIP groups (JSON: code, cases, mean, points) and the rule used.
    dip_groups   TEXT NOT NULL,
    parameters   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    CONSTRAINT uq_case_payment_run UNIQUE (group_id, year, fund, month, seq)
);

CREATE TABLE case_payment (
    run_id        BIGINT NOT NULL REFERENCES case_payment_run(id),
    claim_id      BIGINT NOT NULL REFERENCES claim(id),
    unit_id       BIGINT REFERENCES unit(id),
    dip_group     TEXT NOT NULL,
    level         TEXT NOT NULL,
    cost          BIGINT NOT NULL,
    self_paid     BIGINT NOT NULL,
    group_points  BIGINT NOT NULL,
    level_average BIGINT NOT NULL,
    ratio         BIGINT NOT NULL,
    branch        TEXT NOT NULL,
    points        BIGINT NOT NULL,
    coefficient   BIGINT NOT NULL,
    gross         BIGINT NOT NULL,
    paid          BIGINT NOT NULL,
    PRIMARY KEY (run_id, claim_id)
);

-- Bundled public funds (R9.4): a quarter's distribution of the public-health capitation and
-- the essential-drug subsidy to members, with the parameters it was run with and each
-- member's line (JSON). A quarter runs again only as a further run with a reason.
CREATE TABLE public_fund_run (
    id            INTEGER PRIMARY KEY,
    group_id      BIGINT NOT NULL REFERENCES med_group(id),
    year          INTEGER NOT NULL,
    quarter       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    reason        TEXT,
    population    BIGINT NOT NULL,
    year_total    BIGINT NOT NULL,
    quarter_total BIGINT NOT NULL,
    -- The assessment report whose scores released the remainder, if there was one.
    assessment_id BIGINT REFERENCES assessment_run(id),
    members       TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    CONSTRAINT uq_public_fund_run UNIQUE (group_id, year, quarter, seq)
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
CREATE TRIGGER case_payment_run_no_update BEFORE UPDATE ON case_payment_run
BEGIN SELECT RAISE(ABORT, 'case payment runs are immutable'); END;
CREATE TRIGGER case_payment_run_no_delete BEFORE DELETE ON case_payment_run
BEGIN SELECT RAISE(ABORT, 'case payment runs are immutable'); END;
CREATE TRIGGER case_payment_no_update BEFORE UPDATE ON case_payment
BEGIN SELECT RAISE(ABORT, 'case payment runs are immutable'); END;
CREATE TRIGGER case_payment_no_delete BEFORE DELETE ON case_payment
BEGIN SELECT RAISE(ABORT, 'case payment runs are immutable'); END;
CREATE TRIGGER public_fund_run_no_update BEFORE UPDATE ON public_fund_run
BEGIN SELECT RAISE(ABORT, 'public fund runs are immutable'); END;
CREATE TRIGGER public_fund_run_no_delete BEFORE DELETE ON public_fund_run
BEGIN SELECT RAISE(ABORT, 'public fund runs are immutable'); END;
