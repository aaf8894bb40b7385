-- How many times a reservation handed out the sequence's origin (its first
-- number, again after every wrap): a count of laps begun that only goes
-- up, bumped by the reservation itself. A give-back is taken only while it
-- is unchanged, since a full lap of a small cycling sequence puts the
-- native sequence back where it stood.
ALTER TABLE pez.sequences ADD COLUMN laps bigint NOT NULL DEFAULT 0;

-- The original PEZ's sequence a PEZ sequence continues is recognised by a
-- mark PEZ writes into its comment when it takes it over: pg_dump keeps
-- comments (a restored database is served as it is), while a sequence
-- dropped and created again (at 1, say) has none and is refused. Filled in
-- for sequences taken over before, whose oid still matches, at the next
-- start.
ALTER TABLE pez.sequences ADD COLUMN relation_mark text;

-- Where the original's sequence stood when PEZ took it over (its next
-- number then), and the generation it got: one found behind it at a later
-- start, with that generation still (no restart, no hand-back since), was
-- moved back outside PEZ (a restore, a setval by hand) and is refused.
ALTER TABLE pez.sequences ADD COLUMN relation_floor bigint,
                          ADD COLUMN relation_floor_generation bigint;

-- Every running instance says here, every sync interval (at most 5 s),
-- until when it counts as alive (ten heartbeats ahead, at least 3 s), and
-- says goodbye when it stops: `pez handback` refuses while any is alive. A
-- session's application name cannot tell (a pooler or a connection string
-- sets it to anything).
CREATE TABLE pez.instances (
    id          text        PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    alive_until timestamptz NOT NULL
);
