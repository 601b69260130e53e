-- A booking on PostgreSQL is one statement (crates/store/src/booking/commit.rs). When a
-- step of it finds that the statement must not stand (the referral was withdrawn or booked
-- by a rival after it was read), this aborts the whole statement, so that nothing it wrote
-- remains; the message names the reason for the caller.
CREATE FUNCTION medgrid_refuse(reason TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'medgrid_refuse: ' || reason;
END
$$;
