-- Ablation (measurement only): three secondary indexes a credit writes an entry to and that no
-- write reads: transactions by database transaction (the public log's sealer), by community and
-- time (reports), audit events by subject (the audit trail of one transaction).
drop index transactions_xact_id_seq_idx;
drop index transactions_community_id_created_at_idx;
drop index audit_events_subject_id_idx;
