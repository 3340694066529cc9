-- The double-entry hours ledger: communities, members, accounts, transactions,
-- postings, holds, tokens, idempotency records and the audit trail.
-- Runs as the owner role inside schema timebank (see timebank/migrate.py).

create type principal_info as (
    id uuid,
    kind text,
    roles text[],
    community_id uuid,
    member_id uuid
);

create table communities (
    seq bigint generated always as identity constraint communities_seq_key unique,
    id uuid primary key default gen_random_uuid(),
    slug text not null constraint communities_slug_key unique,
    name text not null,
    parent_id uuid references communities (id),
    unit_minutes integer not null default 15,
    max_transaction_minutes bigint not null default 1440,
    max_balance_minutes bigint not null default 90000,
    overdraft_minutes bigint not null default 0,
    created_at timestamptz not null default clock_timestamp(),
    constraint communities_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    constraint communities_name_length check (char_length(name) between 1 and 100),
    constraint communities_unit_minutes_range check (unit_minutes between 1 and 1440),
    constraint communities_max_transaction_minutes_positive check (max_transaction_minutes > 0),
    constraint communities_max_balance_minutes_positive check (max_balance_minutes > 0),
    constraint communities_overdraft_minutes_nonnegative check (overdraft_minutes >= 0)
);

create table members (
    seq bigint generated always as identity constraint members_seq_key unique,
    id uuid primary key default gen_random_uuid(),
    community_id uuid not null references communities (id),
    display_name text not null,
    roles text[] not null,
    grid text,
    birth_date date,
    phone text,
    external_ref text,
    created_at timestamptz not null default clock_timestamp(),
    created_by uuid not null,
    constraint members_display_name_length check (char_length(display_name) between 1 and 100),
    constraint members_birth_date_range check (birth_date between '1900-01-01' and '2999-12-31'),
    constraint members_roles_known check (
        cardinality(roles) >= 1 and cardinality(roles) <= 4
        and roles <@ array['volunteer', 'resident', 'coordinator', 'auditor']
    )
);
create index members_community_id_seq_idx on members (community_id, seq);

-- Whoever can act: a system admin, a community member, or an auditor without membership.
create table principals (
    id uuid primary key default gen_random_uuid(),
    kind text not null,
    member_id uuid constraint principals_member_id_key unique references members (id),
    community_id uuid references communities (id),
    created_at timestamptz not null default clock_timestamp(),
    constraint principals_kind_known check (kind in ('admin', 'member', 'auditor')),
    constraint principals_member_id_matches_kind check ((kind = 'member') = (member_id is not null))
);

-- Only the SHA-256 of a token is stored; tokens carry 256 random bits, so a slow hash adds nothing.
create table tokens (
    id uuid primary key default gen_random_uuid(),
    principal_id uuid not null references principals (id),
    token_hash bytea not null constraint tokens_token_hash_key unique,
    created_at timestamptz not null default clock_timestamp(),
    created_by text not null,
    constraint tokens_token_hash_length check (octet_length(token_hash) = 32)
);

create table accounts (
    id uuid primary key default gen_random_uuid(),
    community_id uuid not null references communities (id),
    kind text not null,
    member_id uuid constraint accounts_member_id_key unique references members (id),
    balance_minutes bigint not null default 0,
    -- Sum of unresolved holds; expired-but-unmarked holds are excluded at read time.
    held_minutes bigint not null default 0,
    -- Number of postings to this account; each posting stores the version it created.
    version bigint not null default 0,
    updated_at timestamptz not null default clock_timestamp(),
    constraint accounts_kind_known check (kind in ('member', 'issuance', 'pool', 'services')),
    constraint accounts_member_id_matches_kind check ((kind = 'member') = (member_id is not null)),
    constraint accounts_held_minutes_nonnegative check (held_minutes >= 0),
    constraint accounts_version_nonnegative check (version >= 0)
);
create unique index accounts_community_id_kind_key on accounts (community_id, kind) where kind <> 'member';

create table holds (
    id uuid primary key default gen_random_uuid(),
    community_id uuid not null references communities (id),
    account_id uuid not null references accounts (id),
    member_id uuid not null references members (id),
    minutes bigint not null,
    description text not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default clock_timestamp(),
    created_by uuid not null references principals (id),
    on_behalf_of uuid references members (id),
    constraint holds_minutes_positive check (minutes > 0),
    constraint holds_description_length check (char_length(description) <= 500)
);
create index holds_account_id_expires_at_idx on holds (account_id, expires_at);
create index holds_expires_at_idx on holds (expires_at);

create table transactions (
    seq bigint generated always as identity constraint transactions_seq_key unique,
    id uuid primary key default gen_random_uuid(),
    community_id uuid not null references communities (id),
    kind text not null,
    description text not null,
    service_date date,
    created_at timestamptz not null,
    created_by uuid not null references principals (id),
    on_behalf_of uuid references members (id),
    reverses uuid constraint transactions_reverses_key unique references transactions (id),
    hold_id uuid constraint transactions_hold_id_key unique references holds (id),
    request_id text not null,
    constraint transactions_kind_known check (
        kind in ('credit', 'redemption', 'transfer', 'donation', 'pool_grant', 'reversal', 'hold_capture')
    ),
    constraint transactions_description_length check (char_length(description) <= 500),
    constraint transactions_service_date_range check (service_date between '1900-01-01' and '2999-12-31'),
    constraint transactions_reverses_matches_kind check ((kind = 'reversal') = (reverses is not null)),
    constraint transactions_hold_id_matches_kind check ((kind = 'hold_capture') = (hold_id is not null))
);
create index transactions_community_id_seq_idx on transactions (community_id, seq);

create table postings (
    id bigint generated always as identity primary key,
    transaction_id uuid not null references transactions (id),
    account_id uuid not null references accounts (id),
    minutes bigint not null,
    balance_after_minutes bigint not null,
    account_version bigint not null,
    created_at timestamptz not null,
    constraint postings_minutes_nonzero check (minutes <> 0),
    constraint postings_account_id_account_version_key unique (account_id, account_version)
);
create index postings_transaction_id_idx on postings (transaction_id);
create index postings_account_id_created_at_idx on postings (account_id, created_at);

create table hold_resolutions (
    hold_id uuid primary key references holds (id),
    status text not null,
    resolved_at timestamptz not null default clock_timestamp(),
    resolved_by text not null,
    transaction_id uuid constraint hold_resolutions_transaction_id_key unique references transactions (id),
    constraint hold_resolutions_status_known check (status in ('captured', 'released', 'expired')),
    constraint hold_resolutions_transaction_matches_status check ((status = 'captured') = (transaction_id is not null))
);

create table audit_events (
    seq bigint generated always as identity constraint audit_events_seq_key unique,
    id uuid primary key default gen_random_uuid(),
    at timestamptz not null default clock_timestamp(),
    actor text not null,
    on_behalf_of uuid,
    action text not null,
    subject_type text,
    subject_id uuid,
    community_id uuid references communities (id),
    request_id text not null,
    details jsonb not null default '{}'::jsonb,
    constraint audit_events_subject_complete check ((subject_type is null) = (subject_id is null))
);
create index audit_events_community_id_seq_idx on audit_events (community_id, seq);
create index audit_events_subject_id_idx on audit_events (subject_id);

-- The response to each write made with an Idempotency-Key, scoped to the caller.
create table idempotency_keys (
    principal_id uuid not null references principals (id),
    key text not null,
    request_hash bytea not null,
    status_code integer not null,
    response jsonb not null,
    created_at timestamptz not null default clock_timestamp(),
    primary key (principal_id, key),
    constraint idempotency_keys_key_length check (octet_length(key) between 1 and 200)
);

-- History never changes: the ledger tables refuse UPDATE, DELETE and TRUNCATE for every role.
create function reject_ledger_change() returns trigger
language plpgsql as $$
begin
    raise exception using
        errcode = 'TB900',
        message = format('%s is append-only: %s is not allowed', tg_table_name, lower(tg_op)),
        detail = 'append_only';
end;
$$;

create trigger transactions_append_only before update or delete on transactions
    for each row execute function reject_ledger_change();
create trigger transactions_no_truncate before truncate on transactions
    for each statement execute function reject_ledger_change();
create trigger postings_append_only before update or delete on postings
    for each row execute function reject_ledger_change();
create trigger postings_no_truncate before truncate on postings
    for each statement execute function reject_ledger_change();
create trigger holds_append_only before update or delete on holds
    for each row execute function reject_ledger_change();
create trigger holds_no_truncate before truncate on holds
    for each statement execute function reject_ledger_change();
create trigger hold_resolutions_append_only before update or delete on hold_resolutions
    for each row execute function reject_ledger_change();
create trigger hold_resolutions_no_truncate before truncate on hold_resolutions
    for each statement execute function reject_ledger_change();
create trigger audit_events_append_only before update or delete on audit_events
    for each row execute function reject_ledger_change();
create trigger audit_events_no_truncate before truncate on audit_events
    for each statement execute function reject_ledger_change();

-- At commit, every transaction must balance: two or more postings summing to zero, all on
-- accounts of the transaction's community, each amount a multiple of the community's unit
-- and within its per-transaction maximum (a reversal mirrors its original exactly instead).
create function check_transaction_balanced() returns trigger
language plpgsql as $$
declare
    v_tx_id uuid;
    v_tx transactions;
    v_policy communities;
    v_count integer;
    v_sum bigint;
    v_foreign integer;
    v_bad_amount integer;
    v_mismatch integer;
begin
    if tg_table_name = 'transactions' then
        v_tx_id := new.id;
    else
        v_tx_id := new.transaction_id;
    end if;
    select * into v_tx from transactions where id = v_tx_id;
    if not found then
        raise exception using errcode = 'TB901', message = format('posting to unknown transaction %s', v_tx_id),
            detail = 'unbalanced_transaction';
    end if;
    select * into v_policy from communities where id = v_tx.community_id;
    select count(*), coalesce(sum(p.minutes), 0),
           count(*) filter (where a.community_id <> v_tx.community_id),
           count(*) filter (where abs(p.minutes) % v_policy.unit_minutes <> 0
                               or abs(p.minutes) > v_policy.max_transaction_minutes)
      into v_count, v_sum, v_foreign, v_bad_amount
      from postings p join accounts a on a.id = p.account_id
     where p.transaction_id = v_tx_id;
    if v_count < 2 or v_sum <> 0 then
        raise exception using errcode = 'TB901',
            message = format('transaction %s does not balance: %s postings summing to %s', v_tx_id, v_count, v_sum),
            detail = 'unbalanced_transaction';
    end if;
    if v_foreign > 0 then
        raise exception using errcode = 'TB901',
            message = format('transaction %s posts outside its community', v_tx_id),
            detail = 'cross_community_not_allowed';
    end if;
    if v_tx.kind = 'reversal' then
        select count(*) into v_mismatch from (
            (select account_id, -minutes from postings where transaction_id = v_tx.reverses
             except all select account_id, minutes from postings where transaction_id = v_tx_id)
            union all
            (select account_id, minutes from postings where transaction_id = v_tx_id
             except all select account_id, -minutes from postings where transaction_id = v_tx.reverses)
        ) d;
        if v_mismatch > 0 then
            raise exception using errcode = 'TB901',
                message = format('reversal %s does not mirror transaction %s', v_tx_id, v_tx.reverses),
                detail = 'unbalanced_transaction';
        end if;
    elsif v_bad_amount > 0 then
        raise exception using errcode = 'TB901',
            message = format('transaction %s has an amount outside the community policy', v_tx_id),
            detail = 'amount_not_multiple_of_unit';
    end if;
    return null;
end;
$$;

create constraint trigger transactions_balanced after insert on transactions
    deferrable initially deferred for each row execute function check_transaction_balanced();
create constraint trigger postings_balanced after insert on postings
    deferrable initially deferred for each row execute function check_transaction_balanced();
