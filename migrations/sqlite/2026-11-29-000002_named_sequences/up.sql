-- Named sequences: each keeps the start it was created with, its mode, and
-- a generation that every restart bumps (instances that see it change drop
-- the blocks they hold).
ALTER TABLE sequences ADD COLUMN start_value BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sequences ADD COLUMN mode TEXT NOT NULL DEFAULT 'leased'
    CHECK (mode IN ('leased', 'strict'));
ALTER TABLE sequences ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
UPDATE sequences SET start_value = CASE WHEN ascending THEN min_value ELSE max_value END;
