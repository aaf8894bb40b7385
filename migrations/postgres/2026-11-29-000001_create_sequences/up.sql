-- PEZ's sequences are native PostgreSQL sequences in the schema "pez".
-- A sequence's INCREMENT is its lease step: one nextval() leases one block
-- of |increment| numbers starting at the value it returns (cut at the end of
-- the range). The sign of the increment is the direction; MINVALUE,
-- MAXVALUE and CYCLE are the range and the wrap. CACHE 1: no number is held
-- back in a backend's cache, so what the catalog shows is the truth.
--
-- Read them with plain SQL:
--   SELECT sequencename, increment_by, min_value, max_value, cycle, last_value
--     FROM pg_sequences WHERE schemaname = 'pez';
CREATE SCHEMA IF NOT EXISTS pez;

CREATE SEQUENCE pez."forward" AS bigint
    INCREMENT BY 1000 MINVALUE 1 MAXVALUE 9223372036854775807
    START WITH 1 CACHE 1 CYCLE;

CREATE SEQUENCE pez."reverse" AS bigint
    INCREMENT BY -1000 MINVALUE 1 MAXVALUE 9223372036854775807
    START WITH 9223372036854775807 CACHE 1 CYCLE;
