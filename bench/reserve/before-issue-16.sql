-- The reservation statement of PEZ before issue 16 (08840f6), 20 steps of a
-- strict sequence, for pgbench: see docs/benchmarks.md, "Issue 16".
WITH fence AS MATERIALIZED (SELECT pg_logical_emit_message(true, 'pez', 'reserve') AS lsn, pg_advisory_xact_lock_shared((x'50455A00'::bigint << 32) | 16727) AS old),
shape AS MATERIALIZED (SELECT s.seqincrement FROM pg_sequence s WHERE s.seqrelid = 16727::oid AND EXISTS (SELECT 1 FROM pez.sequences m WHERE m.name = 's' AND m.generation = 1)),
taken AS MATERIALIZED (SELECT nextval(16727::oid::regclass) AS value, shape.seqincrement AS read_before FROM fence, shape, generate_series(1, 20)),
counted AS MATERIALIZED (SELECT p.increment FROM pg_sequence_parameters(16727::oid) p WHERE EXISTS (SELECT 1 FROM taken))
SELECT taken.value, taken.read_before AS increment_by, counted.increment AS counted_with FROM taken, counted;
