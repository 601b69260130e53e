-- Each group's figures as last computed from the loaded facts: the home page reads these
-- instead of scanning every encounter on every visit.
CREATE TABLE group_figures (
    group_id          BIGINT PRIMARY KEY REFERENCES med_group(id),
    residents         BIGINT NOT NULL,
    contracted        BIGINT NOT NULL,
    visits            BIGINT NOT NULL,
    primary_visits    BIGINT NOT NULL,
    in_region_visits  BIGINT NOT NULL,
    admissions        BIGINT NOT NULL,
    referrals_up      BIGINT NOT NULL,
    referrals_down    BIGINT NOT NULL,
    first_day         TEXT,
    last_day          TEXT,
    computed_at       TEXT NOT NULL
);
