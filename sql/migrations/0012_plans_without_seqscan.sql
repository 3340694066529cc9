-- The commit-time check that each transaction balances reads one transaction by its key and its
-- postings by transaction_id, three times per two-legged transaction. PL/pgSQL caches a generic
-- plan after five calls; on a database analyzed while postings and transactions were empty (a new
-- deployment after VACUUM ANALYZE, autovacuum's first pass) that plan is a sequential scan, kept
-- for the life of the connection while the tables grow: every commit then reads the whole ledger.
-- The indexes are the right plan at every size, so the planner is told not to pick a sequential
-- scan for this function (the write and read functions in sql/functions/ say the same).
alter function check_transaction_balanced() set enable_seqscan = off;
