-- One row per sequence: its settings and the first number of its next lease.
-- Leasing a block is one UPDATE of next_value in a synchronous (fsync'd)
-- transaction; numbers before next_value have been leased or issued.
CREATE TABLE sequences (
    name        TEXT    NOT NULL PRIMARY KEY,
    ascending   BOOLEAN NOT NULL,
    min_value   BIGINT  NOT NULL,
    max_value   BIGINT  NOT NULL,
    cycle       BOOLEAN NOT NULL DEFAULT 1,
    -- NULL once a non-cycling sequence has leased its last number.
    next_value  BIGINT,
    CHECK (min_value >= 1 AND max_value >= min_value),
    CHECK (next_value IS NULL OR next_value BETWEEN min_value AND max_value)
);

-- The original PEZ's two sequences.
INSERT INTO sequences (name, ascending, min_value, max_value, cycle, next_value) VALUES
    ('forward', 1, 1, 9223372036854775807, 1, 1),
    ('reverse', 0, 1, 9223372036854775807, 1, 9223372036854775807);
