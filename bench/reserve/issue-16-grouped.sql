-- The first version of issue 16 (runs grouped in SQL, laps counted for
-- every sequence), kept for the comparison in docs/benchmarks.md.
WITH settings AS MATERIALIZED (SELECT set_config('application_name', 'pez:x:1', true) AS token, set_config('lock_timeout', '1000', true) AS lock_timeout, set_config('synchronous_commit', CASE current_setting('synchronous_commit') WHEN 'remote_apply' THEN 'remote_apply' ELSE 'on' END, true) AS durable),
fence AS MATERIALIZED (SELECT pg_logical_emit_message(true, 'pez', 'reserve') AS lsn, pg_advisory_xact_lock_shared((x'50455A00'::bigint << 32) | 16727) AS old FROM settings),
shape AS MATERIALIZED (SELECT s.seqincrement, m.laps FROM pg_sequence s, pez.sequences m WHERE s.seqrelid = 16727::oid AND m.name = 's' AND m.generation = 1),
taken AS MATERIALIZED (SELECT g.n, nextval(16727::oid::regclass) AS value, shape.seqincrement AS step FROM fence, shape, generate_series(1, 20) WITH ORDINALITY AS g(i, n)),
marked AS MATERIALIZED (SELECT n, value, CASE WHEN value::numeric = lag(value) OVER (ORDER BY n)::numeric + step THEN 0 ELSE 1 END AS starts_run FROM taken),
runs AS MATERIALIZED (SELECT n, value, sum(starts_run) OVER (ORDER BY n) AS run FROM marked),
counted AS MATERIALIZED (SELECT p.increment FROM pg_sequence_parameters(16727::oid) p WHERE EXISTS (SELECT 1 FROM taken)),
lap AS (UPDATE pez.sequences SET laps = laps + (SELECT count(*) FROM taken WHERE value = 1) WHERE name = 's' AND EXISTS (SELECT 1 FROM taken WHERE value = 1) RETURNING laps)
SELECT (array_agg(runs.value ORDER BY runs.n))[1] AS first, (array_agg(runs.value ORDER BY runs.n DESC))[1] AS last, max(shape.seqincrement) AS increment_by, max(counted.increment) AS counted_with, coalesce((SELECT laps FROM lap), max(shape.laps)) AS laps FROM runs, shape, counted GROUP BY runs.run ORDER BY runs.run;
