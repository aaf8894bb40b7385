-- Set by `pez store copy` once every sequence is in PostgreSQL: a server
-- started on this store refuses, naming where the sequences went, so
-- nobody issues their numbers from both stores.
CREATE TABLE moved_to (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    destination TEXT    NOT NULL,
    moved_at    TEXT    NOT NULL
);
