-- Services: how hours are earned and spent (API.md, 2026-12 additions).
--   * service types, per community, six of them to start with (new and existing communities);
--   * service requests: a resident asks, a volunteer does it, the person served confirms, the hours
--     move once, in a transaction that names the request (transactions.service_request_id, unique:
--     the database refuses a second transaction for one request);
--   * the `system` principal, which the service's own jobs act as (auto-confirmation creates
--     transactions, and every transaction names a principal that created it).

create table service_types (
    community_id uuid not null references communities (id),
    code text not null,
    name text not null,
    default_minutes integer not null,
    active boolean not null default true,
    created_at timestamptz not null default clock_timestamp(),
    updated_at timestamptz not null default clock_timestamp(),
    constraint service_types_pkey primary key (community_id, code),
    constraint service_types_code_format check (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    constraint service_types_name_length check (char_length(name) between 1 and 100),
    constraint service_types_default_minutes_range check (default_minutes between 1 and 1440)
);

-- The six services every community starts with (code, name, default minutes).
create function _add_default_service_types(p_community_id uuid) returns void
language sql as $$
    insert into service_types (community_id, code, name, default_minutes)
    values (p_community_id, 'meals', '助餐', 60),
           (p_community_id, 'cleaning', '助洁', 120),
           (p_community_id, 'bathing', '助浴', 60),
           (p_community_id, 'medical_escort', '助医', 180),
           (p_community_id, 'companionship', '陪聊', 60),
           (p_community_id, 'errands', '代办', 60)
    on conflict do nothing;
$$;

create function add_default_service_types() returns trigger
language plpgsql as $$
begin
    perform _add_default_service_types(new.id);
    return null;
end;
$$;

create trigger communities_default_service_types after insert on communities
    for each row execute function add_default_service_types();

select _add_default_service_types(id) from communities;

-- The service's own jobs act as one principal of kind `system`, which has no token and can never sign in.
alter table principals drop constraint principals_kind_known;
alter table principals add constraint principals_kind_known check (kind in ('admin', 'member', 'auditor', 'system'));
create unique index principals_system_key on principals (kind) where kind = 'system';
insert into principals (kind) values ('system');

create table service_requests (
    seq bigint generated always as identity constraint service_requests_seq_key unique,
    id uuid primary key default gen_random_uuid(),
    community_id uuid not null references communities (id),
    member_id uuid not null references members (id),
    service_type text not null,
    minutes bigint not null,
    scheduled_at timestamptz not null,
    funding text not null,
    description text not null default '',
    status text not null default 'open',
    -- The hold on the member's (own) or the pool's (pool) hours; none for community funding. A
    -- check-in replaces the hold by one that lasts (so work done is never left unpaid).
    hold_id uuid constraint service_requests_hold_id_key unique references holds (id),
    provider_member_id uuid references members (id),
    checked_in_at timestamptz,
    checked_out_at timestamptz,
    reported_minutes bigint,
    rating smallint,
    comment text,
    transaction_id uuid constraint service_requests_transaction_id_key unique references transactions (id),
    cancel_reason text,
    dispute_reason text,
    created_at timestamptz not null default clock_timestamp(),
    created_by uuid not null references principals (id),
    on_behalf_of uuid references members (id),
    updated_at timestamptz not null default clock_timestamp(),
    constraint service_requests_service_type_fkey foreign key (community_id, service_type)
        references service_types (community_id, code),
    constraint service_requests_minutes_positive check (minutes > 0),
    constraint service_requests_funding_known check (funding in ('own', 'community', 'pool')),
    constraint service_requests_status_known check (
        status in ('open', 'assigned', 'in_progress', 'reported', 'disputed', 'completed', 'cancelled')
    ),
    constraint service_requests_hold_matches_funding check ((funding = 'community') = (hold_id is null)),
    constraint service_requests_description_length check (char_length(description) <= 500),
    constraint service_requests_comment_length check (char_length(comment) <= 500),
    constraint service_requests_cancel_reason_length check (char_length(cancel_reason) <= 500),
    constraint service_requests_dispute_reason_length check (char_length(dispute_reason) <= 500),
    constraint service_requests_rating_range check (rating between 1 and 5),
    constraint service_requests_reported_minutes_positive check (reported_minutes > 0)
);
create index service_requests_community_id_seq_idx on service_requests (community_id, seq);
create index service_requests_member_id_seq_idx on service_requests (member_id, seq);
create index service_requests_provider_member_id_seq_idx on service_requests (provider_member_id, seq)
    where provider_member_id is not null;
-- What the jobs look for: reported requests waiting for confirmation, open or assigned ones whose hold may lapse.
create index service_requests_status_updated_at_idx on service_requests (status, updated_at)
    where status in ('open', 'assigned', 'reported');

-- A request's hours move at most once: one transaction per request, whatever the code above does.
alter table transactions add column service_request_id uuid references service_requests (id);
create unique index transactions_service_request_id_key on transactions (service_request_id)
    where service_request_id is not null;

-- A retried write answers exactly what was stored; answers stored before this migration lack
-- service_request_id, which every Transaction now has (null: those transactions name no request).
update idempotency_keys
   set response = response || jsonb_build_object('service_request_id', null)
 where status_code = 201
   and jsonb_typeof(response) = 'object'
   and response ? 'postings'
   and not response ? 'service_request_id';

-- A request changes status in place (each step is in the audit trail), but is never removed.
create function reject_service_request_removal() returns trigger
language plpgsql as $$
begin
    raise exception using
        errcode = 'TB900',
        message = format('%s keeps every request: %s is not allowed', tg_table_name, lower(tg_op)),
        detail = 'append_only';
end;
$$;

create trigger service_requests_no_delete before delete on service_requests
    for each row execute function reject_service_request_removal();
create trigger service_requests_no_truncate before truncate on service_requests
    for each statement execute function reject_service_request_removal();
create trigger service_types_no_delete before delete on service_types
    for each row execute function reject_service_request_removal();
create trigger service_types_no_truncate before truncate on service_types
    for each statement execute function reject_service_request_removal();
