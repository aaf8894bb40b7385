-- forward and reverse may continue the original PEZ's own sequences
-- (forward_seq and backward_seq, which its nodes call nextval() on) instead
-- of PEZ's pez."forward" and pez."reverse": PEZ then leases through them,
-- and PostgreSQL keeps the original's nodes and PEZ's instances apart. The
-- relation a PEZ sequence lives in: NULL is PEZ's own, pez."<name>". Its oid
-- too: a sequence of that name dropped and created again (at 1, say) is not
-- the one PEZ took over, and PEZ refuses to go on with it.
ALTER TABLE pez.sequences
    ADD COLUMN relation_schema text,
    ADD COLUMN relation_name   text,
    ADD COLUMN relation_oid    bigint,
    ADD CONSTRAINT relation_whole CHECK ((relation_schema IS NULL) = (relation_name IS NULL));
