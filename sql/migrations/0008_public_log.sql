-- The public log: every committed transaction becomes a leaf of an append-only Merkle tree
-- (RFC 6962 hashing), whose signed checkpoints leave the database (the signing key never enters it).
--
-- Which transaction committed when: each transaction row records the id of the database transaction
-- that wrote it (xact_id, 64-bit, never wraps). The sealer (timebank/log/sealer.py) logs a row only
-- once it is visible, and keeps as its watermark the xmin of the snapshot it read with: every row
-- with an xact_id below that xmin was visible to it, so nothing that commits later can fall below
-- the watermark. Rows written before this migration read 0: they were all committed long ago.
alter table transactions add column xact_id xid8 not null default '0';
alter table transactions alter column xact_id set default pg_current_xact_id();
create index transactions_xact_id_seq_idx on transactions (xact_id, seq);

-- Leaf i of the tree is the transaction logged i-th. leaf_format names the fixed set of fields
-- whose RFC 8785 canonical JSON is the leaf (README, "The public log"); 1 is the only one so far.
create table log_leaves (
    leaf_index bigint primary key,
    transaction_id uuid not null constraint log_leaves_transaction_id_key unique references transactions (id),
    leaf_format smallint not null default 1,
    logged_at timestamptz not null default clock_timestamp(),
    constraint log_leaves_leaf_index_nonnegative check (leaf_index >= 0),
    constraint log_leaves_leaf_format_known check (leaf_format = 1)
);

-- The hash of every complete subtree: level 0 the leaf hashes, level k the subtree of leaves
-- [index * 2^k, (index + 1) * 2^k). Each is written once, when its last leaf is appended.
create table log_nodes (
    level smallint not null,
    index bigint not null,
    hash bytea not null,
    primary key (level, index),
    constraint log_nodes_level_range check (level between 0 and 62),
    constraint log_nodes_index_nonnegative check (index >= 0),
    constraint log_nodes_hash_length check (octet_length(hash) = 32)
);

-- Every checkpoint signed, as signed (the note: C2SP tlog-checkpoint in a C2SP signed-note).
create table log_checkpoints (
    tree_size bigint primary key,
    root_hash bytea not null,
    note text not null,
    signed_at timestamptz not null default clock_timestamp(),
    constraint log_checkpoints_tree_size_positive check (tree_size > 0),
    constraint log_checkpoints_root_hash_length check (octet_length(root_hash) = 32)
);

-- The sealer's place: the tree's size and the watermark (xact_id, seq) below which every
-- transaction is logged. One row, changed only by log_append.
create table log_state (
    id boolean primary key default true,
    tree_size bigint not null default 0,
    watermark_xact xid8 not null default '0',
    watermark_seq bigint not null default 0,
    constraint log_state_single check (id)
);
insert into log_state default values;

create trigger log_leaves_append_only before update or delete on log_leaves
    for each row execute function reject_ledger_change();
create trigger log_leaves_no_truncate before truncate on log_leaves
    for each statement execute function reject_ledger_change();
create trigger log_nodes_append_only before update or delete on log_nodes
    for each row execute function reject_ledger_change();
create trigger log_nodes_no_truncate before truncate on log_nodes
    for each statement execute function reject_ledger_change();
create trigger log_checkpoints_append_only before update or delete on log_checkpoints
    for each row execute function reject_ledger_change();
create trigger log_checkpoints_no_truncate before truncate on log_checkpoints
    for each statement execute function reject_ledger_change();
create trigger log_state_no_delete before delete on log_state
    for each row execute function reject_ledger_change();
create trigger log_state_no_truncate before truncate on log_state
    for each statement execute function reject_ledger_change();

-- The tree only grows and the watermark only moves forward.
create function reject_log_state_regression() returns trigger
language plpgsql as $$
begin
    if new.tree_size < old.tree_size or (new.watermark_xact, new.watermark_seq) < (old.watermark_xact, old.watermark_seq)
    then
        raise exception using errcode = 'TB900', message = 'log_state: the log cannot shrink or go back',
            detail = 'append_only';
    end if;
    return new;
end;
$$;
create trigger log_state_forward_only before update on log_state
    for each row execute function reject_log_state_regression();
