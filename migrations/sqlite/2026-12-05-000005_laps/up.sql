-- How many times a reservation handed out the sequence's origin (its first
-- number, again after every wrap): a count of laps begun that only goes
-- up. A give-back is taken only while it is unchanged, since a full lap of
-- a small cycling sequence puts next_value back where it stood.
ALTER TABLE sequences ADD COLUMN laps BIGINT NOT NULL DEFAULT 0;
