-- Internal helpers shared by the public operations. None is granted to the service role.
--
-- Plans that stay right as tables grow: PL/pgSQL (and every prepared statement) keeps a generic
-- plan after five executions, planned with the statistics of that moment. On a new deployment
-- analyzed while postings, transactions and idempotency_keys were empty, that plan is a
-- sequential scan, and it stays one on that connection however large the table grows (issue 13).
-- Every function that reads or writes those tables by key says `set enable_seqscan = off`: the
-- index is the right plan at any size, and the cached plan is then always an index plan (no
-- re-planning per call, as plan_cache_mode = force_custom_plan would cost). A statement no index
-- serves still scans. tests/sql/test_plans.py holds this in place.

-- Raise a domain error: SQLSTATE TB000, DETAIL is the stable error code, HINT carries JSON extras.
create or replace function _fail(p_code text, p_message text, p_extra jsonb default '{}'::jsonb)
returns void language plpgsql as $$
begin
    raise exception using errcode = 'TB000', message = p_message, detail = p_code, hint = p_extra::text;
end;
$$;

create or replace function _principal(p_id uuid) returns principal_info
language plpgsql stable as $$
declare
    v_result principal_info;
begin
    select p.id, p.kind,
               case p.kind when 'member' then m.roles when 'admin' then array['admin'] else array['auditor'] end,
               coalesce(m.community_id, p.community_id),
               p.member_id
            into v_result
          from principals p left join members m on m.id = p.member_id
         where p.id = p_id;
    return v_result;
end;
$$;

-- How a principal is called in answers: a member's display name as it is now, else its kind
-- (`admin`, `auditor`). Names are read when answering (a display name may change later); only the
-- stored answer of an idempotent write keeps the name as it was given.
create or replace function _principal_name(p_id uuid) returns text
language sql stable as $$
    select coalesce(m.display_name, p.kind) from principals p left join members m on m.id = p.member_id
     where p.id = p_id;
$$;

-- Allow the actor when it is an admin, staff (p_staff_roles) of p_community, or the member p_member
-- itself holding one of p_self_roles. Otherwise 403 when the actor can see the community, else 404
-- with p_not_found, the very message a missing resource gets, so ids outside reach reveal nothing.
drop function if exists _authorize(principal_info, uuid, uuid, text[], text[]);
create or replace function _authorize(
    p_actor principal_info, p_community uuid, p_member uuid, p_self_roles text[], p_staff_roles text[],
    p_not_found text
) returns void language plpgsql as $$
begin
    if p_actor.id is null then
        perform _fail('unauthenticated', 'unknown principal');
    end if;
    if 'admin' = any(p_actor.roles) then
        return;
    end if;
    if p_actor.community_id = p_community and p_actor.roles && p_staff_roles then
        return;
    end if;
    if p_member is not null and p_actor.member_id = p_member and p_actor.roles && p_self_roles then
        return;
    end if;
    if p_actor.community_id = p_community or (p_actor.kind = 'auditor' and p_actor.community_id is null) then
        perform _fail('forbidden', 'the caller may not do this');
    end if;
    perform _fail('not_found', p_not_found);
end;
$$;

create or replace function _audit(
    p_actor text, p_on_behalf_of uuid, p_action text, p_subject_type text, p_subject_id uuid,
    p_community_id uuid, p_request_id text, p_details jsonb
) returns void language plpgsql as $$
declare
    v_id uuid := uuid_v7();
    v_at timestamptz := clock_timestamp();
    v_details jsonb := coalesce(p_details, '{}'::jsonb);
begin
    insert into audit_events (id, at, actor, on_behalf_of, action, subject_type, subject_id, community_id, request_id,
                              details, content_hash)
    values (v_id, v_at, p_actor, p_on_behalf_of, p_action, p_subject_type, p_subject_id, p_community_id, p_request_id,
            v_details, _audit_event_digest(v_id, v_at, p_actor, p_on_behalf_of, p_action, p_subject_type,
                                          p_subject_id, p_community_id, p_request_id, v_details));
end;
$$;

-- Claim an idempotency key for this transaction. Returns the stored row when the key was used
-- before (a replay), or an all-null row after claiming it. A concurrent claim of the same key
-- waits here until the first commits or rolls back.
create or replace function _idempotency_claim(p_actor uuid, p_key text, p_hash bytea)
returns idempotency_keys language plpgsql set enable_seqscan = off as $$
declare
    v_row idempotency_keys;
begin
    if not exists (select 1 from principals where id = p_actor) then
        perform _fail('unauthenticated', 'unknown principal');
    end if;
    insert into idempotency_keys (principal_id, key, request_hash, status_code, response)
    values (p_actor, p_key, p_hash, 0, 'null'::jsonb)
    on conflict do nothing;
    if found then
        return v_row;
    end if;
    select * into v_row from idempotency_keys where principal_id = p_actor and key = p_key;
    if v_row.request_hash <> p_hash then
        perform _fail('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
    end if;
    return v_row;
end;
$$;

create or replace function _idempotency_store(p_actor uuid, p_key text, p_status integer, p_body jsonb)
returns void language plpgsql set enable_seqscan = off as $$
begin
        update idempotency_keys set status_code = p_status, response = p_body
         where principal_id = p_actor and key = p_key;
end;
$$;

create or replace function _check_amount(p_policy communities, p_minutes bigint) returns void
language plpgsql as $$
begin
    if p_minutes <= 0 or p_minutes > p_policy.max_transaction_minutes then
        perform _fail('amount_out_of_range',
            format('minutes must be between 1 and %s', p_policy.max_transaction_minutes),
            jsonb_build_object('max_transaction_minutes', p_policy.max_transaction_minutes));
    end if;
    if p_minutes % p_policy.unit_minutes <> 0 then
        perform _fail('amount_not_multiple_of_unit',
            format('minutes must be a multiple of %s', p_policy.unit_minutes),
            jsonb_build_object('unit_minutes', p_policy.unit_minutes));
    end if;
end;
$$;

-- Minutes held on an account by pending holds that have not expired (optionally ignoring one hold).
create or replace function _held_minutes(p_account_id uuid, p_except_hold uuid default null)
returns bigint language plpgsql stable set enable_seqscan = off as $$
begin
    return (
        select coalesce(sum(h.minutes), 0)::bigint
          from holds h
         where h.account_id = p_account_id
           and h.expires_at > now()
           and h.id is distinct from p_except_hold
           and not exists (select 1 from hold_resolutions r where r.hold_id = h.id)
    );
end;
$$;

create or replace function _floor_minutes(p_account accounts, p_policy communities) returns bigint
language sql immutable as $$
    select case p_account.kind when 'member' then -p_policy.overdraft_minutes when 'pool' then 0 end;
$$;

create or replace function _system_account(p_community_id uuid, p_kind text) returns uuid
language plpgsql stable set enable_seqscan = off as $$
begin
    return (
        -- "kind <> 'member'" lets the cached generic plan use the partial index on system accounts.
        select id from accounts where community_id = p_community_id and kind = p_kind and kind <> 'member'
    );
end;
$$;

create or replace function _member_account(p_member_id uuid) returns uuid
language plpgsql stable set enable_seqscan = off as $$
begin
    return (
        select id from accounts where member_id = p_member_id
    );
end;
$$;

-- Post one balanced transaction and return it as the API shows it. Locks the touched accounts in id
-- order (fetching them in the same query), checks each floor and cap under that lock, then writes
-- the transaction, the account updates and all postings (with running balance and the version each
-- creates) in one statement apiece.
drop function if exists _post(uuid, text, text, date, uuid, uuid, uuid, uuid, text, uuid[], bigint[]);
create or replace function _post(
    p_community_id uuid, p_kind text, p_description text, p_service_date date,
    p_actor uuid, p_on_behalf_of uuid, p_reverses uuid, p_hold_id uuid, p_request_id text,
    p_accounts uuid[], p_minutes bigint[], p_service_request_id uuid default null
) returns jsonb language plpgsql set enable_seqscan = off as $$
declare
    v_tx uuid := uuid_v7();
    v_policy communities;
    v_actor_name text;
    v_locked accounts[];
    v_account accounts;
    v_now timestamptz;
    v_balances bigint[] := array[]::bigint[];
    v_versions bigint[] := array[]::bigint[];
    v_new bigint;
    v_held bigint;
    v_floor bigint;
    i integer;
    j integer;
begin
    select * into v_policy from communities where id = p_community_id;
    v_actor_name := _principal_name(p_actor);
    select array_agg(a order by a.id) into v_locked
      from (select * from accounts where id = any(p_accounts) order by id for update) a;
    -- Taken after the locks so that, per account, created_at follows posting order.
    v_now := clock_timestamp();
    for j in 1 .. coalesce(cardinality(v_locked), 0) loop
        v_now := greatest(v_now, v_locked[j].updated_at);
    end loop;
    for i in 1 .. cardinality(p_accounts) loop
        v_account := null;
        for j in 1 .. coalesce(cardinality(v_locked), 0) loop
            if v_locked[j].id = p_accounts[i] then
                v_account := v_locked[j];
            end if;
        end loop;
        if v_account.id is null or v_account.community_id <> p_community_id then
            perform _fail('cross_community_not_allowed', 'hours cannot move between communities');
        end if;
        v_new := v_account.balance_minutes + p_minutes[i];
        if p_minutes[i] < 0 then
            v_floor := _floor_minutes(v_account, v_policy);
            if v_floor is not null then
                v_held := case when v_account.held_minutes = 0 then 0 else _held_minutes(v_account.id, p_hold_id) end;
                if v_new - v_held < v_floor then
                    perform _fail('insufficient_balance',
                        format('account %s cannot give %s minutes: balance %s, held %s, lowest allowed %s',
                               v_account.id, -p_minutes[i], v_account.balance_minutes, v_held, v_floor),
                        jsonb_build_object('account_id', v_account.id,
                                           'available_minutes', v_account.balance_minutes - v_held));
                end if;
            end if;
        elsif v_account.kind = 'member' and v_new > v_policy.max_balance_minutes then
            perform _fail('balance_cap_exceeded',
                format('account %s may hold at most %s minutes', v_account.id, v_policy.max_balance_minutes),
                jsonb_build_object('account_id', v_account.id, 'cap_minutes', v_policy.max_balance_minutes));
        end if;
        v_balances := v_balances || v_new;
        v_versions := v_versions || (v_account.version + 1);
    end loop;
    insert into transactions (id, community_id, kind, description, service_date, created_at, created_by,
                              on_behalf_of, reverses, hold_id, request_id, service_request_id)
    values (v_tx, p_community_id, p_kind, p_description, p_service_date, v_now, p_actor,
            p_on_behalf_of, p_reverses, p_hold_id, p_request_id, p_service_request_id);
    update accounts a
       set balance_minutes = u.balance, version = u.version, updated_at = v_now
      from unnest(p_accounts, v_balances, v_versions) as u(id, balance, version)
     where a.id = u.id;
    insert into postings (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
    select v_tx, u.id, u.minutes, u.balance, u.version, v_now
      from unnest(p_accounts, p_minutes, v_balances, v_versions) with ordinality as u(id, minutes, balance, version, n)
     order by u.n;
    return jsonb_build_object(
        'id', v_tx,
        'community', v_policy.slug,
        'kind', p_kind,
        'postings', (select jsonb_agg(jsonb_build_object('account_id', u.id, 'minutes', u.minutes) order by u.n)
                       from unnest(p_accounts, p_minutes) with ordinality as u(id, minutes, n)),
        'description', p_description,
        'service_date', p_service_date,
        'created_at', v_now,
        'created_by', p_actor,
        'created_by_name', v_actor_name,
        'on_behalf_of', p_on_behalf_of,
        'reverses', p_reverses,
        'reversed_by', null,
        'hold_id', p_hold_id,
        'service_request_id', p_service_request_id);
end;
$$;

create or replace function _transaction_json(p_id uuid) returns jsonb
language plpgsql stable set enable_seqscan = off as $$
begin
    return (
        select jsonb_build_object(
            'id', t.id,
            'community', c.slug,
            'kind', t.kind,
            'postings', (select jsonb_agg(jsonb_build_object('account_id', p.account_id, 'minutes', p.minutes) order by p.id)
                           from postings p where p.transaction_id = t.id),
            'description', t.description,
            'service_date', t.service_date,
            'created_at', t.created_at,
            'created_by', t.created_by,
            -- As _principal_name, written out: this runs for every row of a list.
            'created_by_name', (select coalesce(m.display_name, p.kind) from principals p
                                  left join members m on m.id = p.member_id where p.id = t.created_by),
            'on_behalf_of', t.on_behalf_of,
            'reverses', t.reverses,
            'reversed_by', (select r.id from transactions r where r.reverses = t.id),
            'hold_id', t.hold_id,
            'service_request_id', t.service_request_id)
          from transactions t join communities c on c.id = t.community_id
         where t.id = p_id
    );
end;
$$;

create or replace function _hold_json(p_id uuid) returns jsonb
language plpgsql stable set enable_seqscan = off as $$
begin
    return (
        select jsonb_build_object(
            'id', h.id,
            'account_id', h.account_id,
            'member_id', h.member_id,
            'minutes', h.minutes,
            'description', h.description,
            'status', coalesce(r.status, case when h.expires_at <= now() then 'expired' else 'pending' end),
            'expires_at', h.expires_at,
            'created_at', h.created_at,
            'resolved_at', r.resolved_at,
            'transaction_id', r.transaction_id)
          from holds h left join hold_resolutions r on r.hold_id = h.id
         where h.id = p_id
    );
end;
$$;
