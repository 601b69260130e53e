-- A referral request repeated (a retry after a lost answer, a form sent twice) returns the
-- referral the first request wrote instead of writing a second one.
ALTER TABLE referral ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX uq_referral_idempotency ON referral (group_id, idempotency_key);
