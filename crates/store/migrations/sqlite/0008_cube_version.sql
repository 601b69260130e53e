-- Every replacement of the cube's cells counts up, so that a server can keep the cube in
-- memory and know when to read it again.
ALTER TABLE indicator_refresh ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
