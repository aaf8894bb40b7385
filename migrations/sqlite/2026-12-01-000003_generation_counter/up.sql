-- Generations come from one counter that only goes up, shared by every
-- sequence: a restart or a creation takes the next value. A sequence that
-- is deleted and created again therefore never repeats a generation, and
-- whoever saw the old one notices the change.
CREATE TABLE generation_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT  NOT NULL
);
INSERT INTO generation_counter (id, last) SELECT 1, COALESCE(MAX(generation), 0) FROM sequences;
