-- The outcome of each `timebank verify` run, so that /audit can show auditors the last one
-- (PAGES.md) next to the latest signed checkpoint. Append-only like the ledger: a past outcome is
-- never rewritten. Rows are written only through record_verify_run (99_verify_runs.sql).
create table verify_runs (
    seq bigint generated always as identity primary key,
    finished_at timestamptz not null default clock_timestamp(),
    -- The community checked, or null for the whole ledger.
    community_id uuid references communities (id),
    with_checkpoints boolean not null,
    checks integer not null,
    violations integer not null,
    constraint verify_runs_counts_non_negative check (checks >= 0 and violations >= 0)
);
create trigger verify_runs_append_only before update or delete on verify_runs
    for each row execute function reject_ledger_change();
create trigger verify_runs_no_truncate before truncate on verify_runs
    for each statement execute function reject_ledger_change();
