-- The reservation as a function (issue 20): PostgreSQL keeps the plans of a
-- PL/pgSQL function's statements for the life of the server process, so the
-- reservation is no longer planned afresh at every call (PEZ sends unnamed
-- statements only, for poolers). The body is the statement PEZ sent before,
-- one statement, one snapshot; src/store/postgres/reserve.rs says why each
-- part is there. Generic plans always: the parameters change nothing
-- about the plan, and a custom plan would be the planning this saves. Its
-- search_path is PostgreSQL's catalog, temporary tables last, so that no
-- schema or temporary table of a role's or a session's can shadow a
-- function or catalog it calls (every PEZ table is named with its schema).
-- PEZ checks at start that this function is in the database as written
-- here, its settings too (src/store/postgres/reserve.rs): a setting
-- attached to it (`ALTER FUNCTION ... SET synchronous_commit = local`)
-- would undo what it sets for its own commit. A later version of it gets a
-- new name, never CREATE OR REPLACE: older PEZ instances still running
-- during a rolling upgrade call this one.
CREATE FUNCTION pez.reserve(
    seq_oid bigint, steps bigint, seq_name text, seq_generation bigint,
    token text, lock_timeout_ms text, origin bigint, count_laps boolean)
RETURNS TABLE (taken bigint[], increment_by bigint, counted_with bigint, laps bigint)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET search_path = pg_catalog, pg_temp
AS $reserve$
BEGIN
    IF count_laps THEN
        RETURN QUERY
        WITH settings AS MATERIALIZED (
                SELECT set_config('application_name', token, true) AS token,
                       set_config('lock_timeout', lock_timeout_ms, true) AS lock_timeout,
                       set_config('synchronous_commit',
                                  CASE current_setting('synchronous_commit')
                                  WHEN 'remote_apply' THEN 'remote_apply' ELSE 'on' END,
                                  true) AS durable),
             fence AS MATERIALIZED (
                SELECT pg_logical_emit_message(true, 'pez', 'reserve') AS lsn,
                       pg_advisory_xact_lock_shared((x'50455A00'::bigint << 32) | seq_oid) AS old
                  FROM settings),
             shape AS MATERIALIZED (
                SELECT s.seqincrement, m.laps FROM pg_sequence s, pez.sequences m
                 WHERE s.seqrelid = seq_oid::oid AND m.name = seq_name
                   AND m.generation = seq_generation),
             taken AS MATERIALIZED (
                SELECT g.n, nextval(seq_oid::oid::regclass) AS value
                  FROM fence, shape, generate_series(1, steps) WITH ORDINALITY AS g(i, n)),
             counted AS MATERIALIZED (
                SELECT p.increment FROM pg_sequence_parameters(seq_oid::oid) p
                 WHERE EXISTS (SELECT 1 FROM taken)),
             lap AS (
                UPDATE pez.sequences m
                   SET laps = m.laps + (SELECT count(*) FROM taken WHERE value = origin)
                 WHERE m.name = seq_name AND EXISTS (SELECT 1 FROM taken WHERE value = origin)
                RETURNING m.laps)
        SELECT (SELECT array_agg(t.value ORDER BY t.n) FROM taken t),
               shape.seqincrement, counted.increment,
               coalesce((SELECT lap.laps FROM lap), shape.laps)
          FROM shape, counted;
    ELSE
        RETURN QUERY
        WITH settings AS MATERIALIZED (
                SELECT set_config('application_name', token, true) AS token,
                       set_config('lock_timeout', lock_timeout_ms, true) AS lock_timeout,
                       set_config('synchronous_commit',
                                  CASE current_setting('synchronous_commit')
                                  WHEN 'remote_apply' THEN 'remote_apply' ELSE 'on' END,
                                  true) AS durable),
             fence AS MATERIALIZED (
                SELECT pg_logical_emit_message(true, 'pez', 'reserve') AS lsn,
                       pg_advisory_xact_lock_shared((x'50455A00'::bigint << 32) | seq_oid) AS old
                  FROM settings),
             shape AS MATERIALIZED (
                SELECT s.seqincrement, m.laps FROM pg_sequence s, pez.sequences m
                 WHERE s.seqrelid = seq_oid::oid AND m.name = seq_name
                   AND m.generation = seq_generation),
             taken AS MATERIALIZED (
                SELECT g.n, nextval(seq_oid::oid::regclass) AS value
                  FROM fence, shape, generate_series(1, steps) WITH ORDINALITY AS g(i, n)),
             counted AS MATERIALIZED (
                SELECT p.increment FROM pg_sequence_parameters(seq_oid::oid) p
                 WHERE EXISTS (SELECT 1 FROM taken))
        SELECT (SELECT array_agg(t.value ORDER BY t.n) FROM taken t),
               shape.seqincrement, counted.increment, shape.laps
          FROM shape, counted;
    END IF;
END
$reserve$;

