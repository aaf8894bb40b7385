-- What a PostgreSQL sequence cannot hold itself: the start a PEZ sequence
-- was created with, its mode (leased: INCREMENT is the lease step of 1000;
-- strict: INCREMENT is 1, one nextval per number), and a generation that
-- every restart bumps (instances that see it change drop the blocks they
-- hold). Direction, bounds and cycle stay in the sequence itself.
CREATE TABLE pez.sequences (
    name        text        PRIMARY KEY,
    mode        text        NOT NULL DEFAULT 'leased' CHECK (mode IN ('leased', 'strict')),
    start_value bigint      NOT NULL,
    generation  bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO pez.sequences (name, start_value) VALUES
    ('forward', 1),
    ('reverse', 9223372036854775807);
