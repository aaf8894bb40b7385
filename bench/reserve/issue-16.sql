-- The reservation statement of issue 16 (its own settings; values as one
-- array in call order; no lap count: not a ring), 20 steps of a strict
-- sequence, for pgbench: see docs/benchmarks.md, "Issue 16".
WITH settings AS MATERIALIZED (SELECT set_config('application_name', 'pez:x:1', true) AS token, set_config('lock_timeout', '1000', true) AS lock_timeout, set_config('synchronous_commit', CASE current_setting('synchronous_commit') WHEN 'remote_apply' THEN 'remote_apply' ELSE 'on' END, true) AS durable),
fence AS MATERIALIZED (SELECT pg_logical_emit_message(true, 'pez', 'reserve') AS lsn, pg_advisory_xact_lock_shared((x'50455A00'::bigint << 32) | 16727) AS old FROM settings),
shape AS MATERIALIZED (SELECT s.seqincrement, m.laps FROM pg_sequence s, pez.sequences m WHERE s.seqrelid = 16727::oid AND m.name = 's' AND m.generation = 1),
taken AS MATERIALIZED (SELECT g.n, nextval(16727::oid::regclass) AS value FROM fence, shape, generate_series(1, 20) WITH ORDINALITY AS g(i, n)),
counted AS MATERIALIZED (SELECT p.increment FROM pg_sequence_parameters(16727::oid) p WHERE EXISTS (SELECT 1 FROM taken))

SELECT (SELECT array_agg(value ORDER BY n) FROM taken) AS vals, shape.seqincrement AS increment_by, counted.increment AS counted_with, shape.laps AS laps FROM shape, counted;
