-- Activity crediting (API.md, v1 additions): many volunteers credited by one request, all or
-- nothing. A batch is recorded with the transactions it made; like the ledger, it never changes.

create table credit_batches (
    seq bigint generated always as identity constraint credit_batches_seq_key unique,
    id uuid primary key default gen_random_uuid(),
    community_id uuid not null references communities (id),
    service_date date not null,
    description text not null,
    total_minutes bigint not null,
    created_at timestamptz not null default clock_timestamp(),
    created_by uuid not null,
    request_id text not null,
    constraint credit_batches_description_length check (char_length(description) <= 500),
    constraint credit_batches_total_minutes_positive check (total_minutes > 0)
);
create index credit_batches_community_id_seq_idx on credit_batches (community_id, seq);

-- The credits a batch made, in the order of its items (position 1..500).
create table credit_batch_transactions (
    credit_batch_id uuid not null references credit_batches (id),
    position integer not null,
    transaction_id uuid not null constraint credit_batch_transactions_transaction_id_key unique
        references transactions (id),
    primary key (credit_batch_id, position),
    constraint credit_batch_transactions_position_range check (position between 1 and 500)
);

create trigger credit_batches_append_only before update or delete on credit_batches
    for each row execute function reject_ledger_change();
create trigger credit_batches_no_truncate before truncate on credit_batches
    for each statement execute function reject_ledger_change();
create trigger credit_batch_transactions_append_only before update or delete on credit_batch_transactions
    for each row execute function reject_ledger_change();
create trigger credit_batch_transactions_no_truncate before truncate on credit_batch_transactions
    for each statement execute function reject_ledger_change();
