-- `pez store copy` marks the store as moved before it moves anything, and
-- sets finished_at once every sequence is in PostgreSQL. A store whose
-- copy was cut short (a crash, a power cut, a database that went away)
-- then says so, and asks for the copy to be run again, rather than
-- sending the operator to a database that holds only part of it. A row of
-- an older release has none: finished or not is unknown, and running the
-- copy again (only forward) settles it either way.
ALTER TABLE moved_to ADD COLUMN finished_at TEXT;
