-- Operations that move hours. Each takes the acting principal, the request id, the caller's
-- Idempotency-Key and a hash of the request, and answers (status_code, body, replayed): the
-- response is stored with the key in the same transaction as the effect.

create or replace function _member_for_write(p_member_id uuid) returns members
language plpgsql stable as $$
declare
    v_member members;
begin
    select * into v_member from members where id = p_member_id;
    if not found then
        perform _fail('not_found', 'no such member');
    end if;
    return v_member;
end;
$$;

create or replace function _policy(p_community_id uuid) returns communities
language plpgsql stable as $$
declare
    v_result communities;
begin
    select * into v_result from communities where id = p_community_id;
    return v_result;
end;
$$;

drop function if exists _transaction_created(uuid, text, text, uuid, uuid, uuid, jsonb);
create or replace function _transaction_created(
    p_actor uuid, p_key text, p_request_id text, p_body jsonb, p_community_id uuid, p_on_behalf_of uuid, p_details jsonb
) returns jsonb language plpgsql as $$
declare
    v_body jsonb := p_body;
begin
    perform _audit(p_actor::text, p_on_behalf_of, 'transaction.created', 'transaction', (p_body->>'id')::uuid,
        p_community_id,
        p_request_id, p_details || jsonb_build_object('kind', v_body->'kind', 'postings', v_body->'postings'));
    perform _idempotency_store(p_actor, p_key, 201, v_body);
    return v_body;
end;
$$;

create or replace function post_credit(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_member_id uuid, p_minutes bigint, p_service_date date, p_description text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_member members;
    v_policy communities;
    v_tx uuid;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    perform _authorize(_principal(p_actor), v_member.community_id, null, array[]::text[], array['coordinator'],
        'no such member');
    if not ('volunteer' = any(v_member.roles)) then
        perform _fail('not_a_volunteer', 'only members with the volunteer role can be credited');
    end if;
    v_policy := _policy(v_member.community_id);
    perform _check_amount(v_policy, p_minutes);
    perform _check_service_date(v_policy, p_service_date);
    -- Eligibility (60_people.sql): the volunteer's age on the day served.
    perform _require_volunteer_age(v_member.community_id, v_member.id, p_service_date);
    v_body := _post(v_member.community_id, 'credit', p_description, p_service_date, p_actor, null, null, null, p_request_id,
        array[_system_account(v_member.community_id, 'issuance'), _member_account(v_member.id)],
        array[-p_minutes, p_minutes]);
    return query select 201, _transaction_created(p_actor, p_key, p_request_id, v_body, v_member.community_id, null,
        jsonb_build_object('member_id', v_member.id, 'minutes', p_minutes)), false;
end;
$$;

-- Hours are credited for a service done: its date may not lie after today where the community is
-- (post_credits applies the same rule to every credit of a batch).
create or replace function _check_service_date(p_policy communities, p_service_date date) returns void
language plpgsql stable as $$
declare
    v_today date := (now() at time zone p_policy.time_zone)::date;
begin
    if p_service_date > v_today then
        perform _fail('service_date_in_future',
            format('service_date %s is after today (%s in %s)', p_service_date, v_today, p_policy.time_zone),
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.service_date', 'message', 'after today in the community''s time zone'))));
    end if;
end;
$$;

-- Who acts for whom: a member acting on its own account is on no one's behalf; anyone else is.
create or replace function _on_behalf_of(p_actor principal_info, p_member_id uuid) returns uuid
language sql immutable as $$
    select case when p_actor.member_id = p_member_id then null else p_member_id end;
$$;

create or replace function post_redemption(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_member_id uuid, p_minutes bigint, p_description text, p_provider_member_id uuid
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_member members;
    v_provider members;
    v_target uuid;
    v_tx uuid;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    perform _authorize(v_actor, v_member.community_id, v_member.id, array['resident'], array['coordinator'],
        'no such member');
    if p_provider_member_id is not null then
        v_provider := _member_for_write(p_provider_member_id);
        if v_provider.id = v_member.id then
            perform _fail('same_account', 'a member cannot redeem hours with itself');
        end if;
        if v_provider.community_id <> v_member.community_id then
            perform _fail('cross_community_not_allowed', 'the provider belongs to another community');
        end if;
        v_target := _member_account(v_provider.id);
    else
        v_target := _system_account(v_member.community_id, 'services');
    end if;
    perform _check_amount(_policy(v_member.community_id), p_minutes);
    perform _require_redeem_age(v_member.community_id, v_member.id, _today(v_member.community_id));
    v_body := _post(v_member.community_id, 'redemption', p_description, null, p_actor,
        _on_behalf_of(v_actor, v_member.id), null, null, p_request_id,
        array[_member_account(v_member.id), v_target], array[-p_minutes, p_minutes]);
    return query select 201, _transaction_created(p_actor, p_key, p_request_id, v_body, v_member.community_id,
        _on_behalf_of(v_actor, v_member.id),
        jsonb_build_object('member_id', v_member.id, 'minutes', p_minutes, 'provider_member_id', p_provider_member_id)), false;
end;
$$;

create or replace function post_transfer(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_from_member_id uuid, p_to_member_id uuid, p_to_pool boolean, p_minutes bigint, p_description text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_from members;
    v_to members;
    v_target uuid;
    v_kind text;
    v_tx uuid;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_from := _member_for_write(p_from_member_id);
    perform _authorize(v_actor, v_from.community_id, v_from.id, array['volunteer', 'resident'], array['coordinator'],
        'no such member');
    if p_to_pool then
        v_kind := 'donation';
        v_target := _system_account(v_from.community_id, 'pool');
    else
        v_kind := 'transfer';
        v_to := _member_for_write(p_to_member_id);
        if v_to.id = v_from.id then
            perform _fail('same_account', 'a member cannot transfer hours to itself');
        end if;
        if v_to.community_id <> v_from.community_id then
            perform _fail('cross_community_not_allowed', 'the recipient belongs to another community');
        end if;
        v_target := _member_account(v_to.id);
    end if;
    perform _check_amount(_policy(v_from.community_id), p_minutes);
    -- A gift (not a donation to the pool) may be limited to relatives.
    if not p_to_pool then
        perform _require_gift_scope(v_from.community_id, v_from.id, v_to.id);
    end if;
    v_body := _post(v_from.community_id, v_kind, p_description, null, p_actor,
        _on_behalf_of(v_actor, v_from.id), null, null, p_request_id,
        array[_member_account(v_from.id), v_target], array[-p_minutes, p_minutes]);
    return query select 201, _transaction_created(p_actor, p_key, p_request_id, v_body, v_from.community_id,
        _on_behalf_of(v_actor, v_from.id),
        jsonb_build_object('from_member_id', v_from.id, 'to_member_id', p_to_member_id, 'to_pool', p_to_pool,
                           'minutes', p_minutes)), false;
end;
$$;

create or replace function post_pool_grant(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_member_id uuid, p_minutes bigint, p_description text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_member members;
    v_tx uuid;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    perform _authorize(_principal(p_actor), v_member.community_id, null, array[]::text[], array['coordinator'],
        'no such member');
    perform _check_amount(_policy(v_member.community_id), p_minutes);
    perform _require_pool_eligible(v_member.community_id, v_member.id);
    v_body := _post(v_member.community_id, 'pool_grant', p_description, null, p_actor, null, null, null, p_request_id,
        array[_system_account(v_member.community_id, 'pool'), _member_account(v_member.id)],
        array[-p_minutes, p_minutes]);
    return query select 201, _transaction_created(p_actor, p_key, p_request_id, v_body, v_member.community_id, null,
        jsonb_build_object('member_id', v_member.id, 'minutes', p_minutes)), false;
end;
$$;

create or replace function reverse_transaction(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_transaction_id uuid, p_reason text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_original transactions;
    v_accounts uuid[];
    v_minutes bigint[];
    v_tx uuid;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    select * into v_original from transactions where id = p_transaction_id;
    if not found then
        perform _fail('not_found', 'no such transaction');
    end if;
    perform _authorize(_principal(p_actor), v_original.community_id, null, array[]::text[], array['coordinator'],
        'no such transaction');
    if v_original.kind = 'reversal' then
        perform _fail('cannot_reverse_reversal', 'a reversal cannot itself be reversed',
            jsonb_build_object('transaction_id', v_original.id));
    end if;
    -- Serialise reversals of one transaction: the second waits here, then sees the first.
    perform pg_advisory_xact_lock(hashtextextended(v_original.id::text, 0));
    if exists (select 1 from transactions where reverses = v_original.id) then
        perform _fail('already_reversed', 'this transaction was already reversed',
            jsonb_build_object('transaction_id', v_original.id,
                'reversed_by', (select id from transactions where reverses = v_original.id)));
    end if;
    select array_agg(account_id order by id), array_agg(-minutes order by id)
      into v_accounts, v_minutes
      from postings where transaction_id = v_original.id;
    v_body := _post(v_original.community_id, 'reversal', p_reason, null, p_actor, null, v_original.id, null, p_request_id,
        v_accounts, v_minutes);
    return query select 201, _transaction_created(p_actor, p_key, p_request_id, v_body, v_original.community_id, null,
        jsonb_build_object('reverses', v_original.id, 'reason', p_reason)), false;
end;
$$;

-- Hold p_minutes of an account (a member's, or the pool's for a service the pool pays) for
-- p_member_id, if its available minutes allow it: locks the account, checks its floor, writes the
-- hold. Shared by place_hold and the service requests (70_service_requests.sql); audits nothing.
create or replace function _place_hold(
    p_actor uuid, p_account_id uuid, p_member_id uuid, p_minutes bigint, p_description text,
    p_expires_at timestamptz, p_on_behalf_of uuid
) returns uuid language plpgsql as $$
declare
    v_account accounts;
    v_policy communities;
    v_held bigint;
    v_hold uuid;
begin
    select * into v_account from accounts where id = p_account_id for update;
    v_policy := _policy(v_account.community_id);
    v_held := _held_minutes(v_account.id);
    if v_account.balance_minutes - v_held - p_minutes < _floor_minutes(v_account, v_policy) then
        perform _fail('insufficient_balance',
            format('account %s cannot hold %s minutes: balance %s, held %s, lowest allowed %s', v_account.id,
                   p_minutes, v_account.balance_minutes, v_held, _floor_minutes(v_account, v_policy)),
            jsonb_build_object('account_id', v_account.id, 'available_minutes', v_account.balance_minutes - v_held));
    end if;
    insert into holds (community_id, account_id, member_id, minutes, description, expires_at, created_by, on_behalf_of)
    values (v_account.community_id, v_account.id, p_member_id, p_minutes, p_description, p_expires_at, p_actor,
            p_on_behalf_of)
    returning id into v_hold;
    update accounts set held_minutes = held_minutes + p_minutes where id = v_account.id;
    return v_hold;
end;
$$;

create or replace function place_hold(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_member_id uuid, p_minutes bigint, p_description text, p_expires_at timestamptz
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_member members;
    v_policy communities;
    v_account accounts;
    v_held bigint;
    v_expires_at timestamptz;
    v_hold uuid;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    perform _authorize(v_actor, v_member.community_id, v_member.id, array['resident'], array['coordinator'],
        'no such member');
    v_policy := _policy(v_member.community_id);
    perform _check_amount(v_policy, p_minutes);
    -- A hold books a service paid with the member's own hours: redeem_min_age applies.
    perform _require_redeem_age(v_member.community_id, v_member.id, _today(v_member.community_id));
    -- Checked here, after the key is claimed, so a retry after the moment passed still replays.
    v_expires_at := coalesce(p_expires_at, now() + interval '14 days');
    if v_expires_at <= now() or v_expires_at > now() + interval '366 days' then
        perform _fail('invalid_expiry', 'expires_at must be in the future and within 366 days',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.expires_at', 'message', 'must be in the future and within 366 days'))));
    end if;
    v_hold := _place_hold(p_actor, _member_account(v_member.id), v_member.id, p_minutes, p_description, v_expires_at,
        _on_behalf_of(v_actor, v_member.id));
    v_body := _hold_json(v_hold);
    perform _audit(p_actor::text, _on_behalf_of(v_actor, v_member.id), 'hold.placed', 'hold', v_hold,
        v_member.community_id, p_request_id, jsonb_build_object('member_id', v_member.id, 'minutes', p_minutes,
        'expires_at', v_expires_at));
    perform _idempotency_store(p_actor, p_key, 201, v_body);
    return query select 201, v_body, false;
end;
$$;

drop function if exists _pending_hold(principal_info, uuid);

-- The hold, if the actor may resolve it (holds rows never change, so no lock is needed to read it).
create or replace function _hold_for_resolution(p_actor principal_info, p_hold_id uuid) returns holds
language plpgsql as $$
declare
    v_hold holds;
begin
    select * into v_hold from holds where id = p_hold_id;
    if not found then
        perform _fail('not_found', 'no such hold');
    end if;
    perform _authorize(p_actor, v_hold.community_id, null, array[]::text[], array['coordinator'], 'no such hold');
    -- A service request's hold moves with its request (confirm, cancel), never on its own.
    if exists (select 1 from service_requests where hold_id = v_hold.id) then
        perform _fail('hold_belongs_to_request',
            'this hold belongs to a service request; confirm or cancel the request instead',
            jsonb_build_object('hold_id', v_hold.id,
                'service_request_id', (select id from service_requests where hold_id = v_hold.id)));
    end if;
    return v_hold;
end;
$$;

-- Lock the accounts a resolution touches, in id order like every posting, then check that the
-- hold is still pending: not resolved by a concurrent request, not expired.
create or replace function _lock_pending_hold(p_hold holds, p_accounts uuid[]) returns void
language plpgsql as $$
begin
    perform 1 from accounts where id = any(p_accounts) order by id for update;
    if exists (select 1 from hold_resolutions where hold_id = p_hold.id) or p_hold.expires_at <= now() then
        perform _fail('hold_not_pending', 'this hold was already captured, released or expired',
            jsonb_build_object('hold_id', p_hold.id, 'status', _hold_json(p_hold.id)->'status'));
    end if;
end;
$$;

-- Capture p_minutes of a pending hold to p_target (the rest is released) and return the
-- hold_capture transaction. Shared by capture_hold and the service requests, which name the
-- request the transaction pays for and the service's date; audits nothing.
create or replace function _capture_hold(
    p_actor uuid, p_request_id text, p_hold holds, p_minutes bigint, p_target uuid,
    p_service_date date, p_service_request_id uuid
) returns jsonb language plpgsql as $$
declare
    v_body jsonb;
begin
    perform _lock_pending_hold(p_hold, array[p_hold.account_id, p_target]);
    if p_minutes > p_hold.minutes then
        perform _fail('capture_exceeds_hold', format('the hold reserves only %s minutes', p_hold.minutes),
            jsonb_build_object('held_minutes', p_hold.minutes));
    end if;
    perform _check_amount(_policy(p_hold.community_id), p_minutes);
    -- The hold is resolved first so the posting's floor check no longer counts it as held.
    update accounts set held_minutes = held_minutes - p_hold.minutes where id = p_hold.account_id;
    v_body := _post(p_hold.community_id, 'hold_capture', p_hold.description, p_service_date, p_actor,
        p_hold.on_behalf_of, null, p_hold.id, p_request_id, array[p_hold.account_id, p_target],
        array[-p_minutes, p_minutes], p_service_request_id);
    insert into hold_resolutions (hold_id, status, resolved_by, transaction_id)
    values (p_hold.id, 'captured', p_actor::text, (v_body->>'id')::uuid);
    return v_body;
end;
$$;

-- Release a pending hold (p_resolved_by: the principal's id, or `system`). Audits nothing.
create or replace function _release_hold(p_resolved_by text, p_hold holds) returns void
language plpgsql as $$
begin
    perform _lock_pending_hold(p_hold, array[p_hold.account_id]);
    update accounts set held_minutes = held_minutes - p_hold.minutes where id = p_hold.account_id;
    insert into hold_resolutions (hold_id, status, resolved_by) values (p_hold.id, 'released', p_resolved_by);
end;
$$;

create or replace function capture_hold(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_hold_id uuid, p_minutes bigint, p_provider_member_id uuid
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_hold holds;
    v_provider members;
    v_minutes bigint;
    v_target uuid;
    v_tx uuid;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_hold := _hold_for_resolution(_principal(p_actor), p_hold_id);
    if p_provider_member_id is not null then
        v_provider := _member_for_write(p_provider_member_id);
        if v_provider.id = v_hold.member_id then
            perform _fail('same_account', 'a member cannot pay itself');
        end if;
        if v_provider.community_id <> v_hold.community_id then
            perform _fail('cross_community_not_allowed', 'the provider belongs to another community');
        end if;
        v_target := _member_account(v_provider.id);
    else
        v_target := _system_account(v_hold.community_id, 'services');
    end if;
    v_minutes := coalesce(p_minutes, v_hold.minutes);
    v_body := _capture_hold(p_actor, p_request_id, v_hold, v_minutes, v_target, null, null);
    v_tx := (v_body->>'id')::uuid;
    perform _audit(p_actor::text, v_hold.on_behalf_of, 'hold.captured', 'hold', v_hold.id, v_hold.community_id,
        p_request_id, jsonb_build_object('minutes', v_minutes, 'released_minutes', v_hold.minutes - v_minutes,
        'transaction_id', v_tx));
    return query select 201, _transaction_created(p_actor, p_key, p_request_id, v_body, v_hold.community_id,
        v_hold.on_behalf_of, jsonb_build_object('hold_id', v_hold.id, 'minutes', v_minutes)), false;
end;
$$;

create or replace function release_hold(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_hold_id uuid
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_hold holds;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_hold := _hold_for_resolution(_principal(p_actor), p_hold_id);
    perform _release_hold(p_actor::text, v_hold);
    v_body := _hold_json(v_hold.id);
    perform _audit(p_actor::text, v_hold.on_behalf_of, 'hold.released', 'hold', v_hold.id, v_hold.community_id,
        p_request_id, jsonb_build_object('minutes', v_hold.minutes));
    perform _idempotency_store(p_actor, p_key, 200, v_body);
    return query select 200, v_body, false;
end;
$$;

-- The expiry job: append an 'expired' resolution to each hold past its expiry and stop holding its
-- minutes. Reads already ignore expired holds; this makes the record say so. Returns how many.
create or replace function expire_holds(p_request_id text, p_limit integer default 1000) returns integer
language plpgsql security definer set search_path = timebank, pg_temp set enable_seqscan = off as $$
declare
    v_hold holds;
    v_count integer := 0;
begin
    for v_hold in
        select h.* from holds h
         where h.expires_at <= now()
           and not exists (select 1 from hold_resolutions r where r.hold_id = h.id)
         order by h.account_id, h.expires_at limit p_limit
    loop
        perform 1 from accounts where id = v_hold.account_id for update;
        insert into hold_resolutions (hold_id, status, resolved_by) values (v_hold.id, 'expired', 'system')
        on conflict do nothing;
        if found then
            update accounts set held_minutes = held_minutes - v_hold.minutes where id = v_hold.account_id;
            perform _audit('system', null, 'hold.expired', 'hold', v_hold.id, v_hold.community_id, p_request_id,
                jsonb_build_object('minutes', v_hold.minutes));
            v_count := v_count + 1;
        end if;
    end loop;
    return v_count;
end;
$$;
