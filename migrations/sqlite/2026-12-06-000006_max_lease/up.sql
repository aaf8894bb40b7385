-- The largest range lease of each sequence (issue 17): set when it is
-- created, so that one client cannot wrap or exhaust it with a few leases.
-- NULL for sequences created before: PEZ reads the default then, a
-- thousandth of the range (see SequenceSpec::default_max_lease), so
-- nothing needs rewriting.
ALTER TABLE sequences ADD COLUMN max_lease BIGINT CHECK (max_lease IS NULL OR max_lease >= 1);
