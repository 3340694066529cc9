-- Services: service types, and service requests with their state machine (API.md, 2026-12 additions).
--
-- A resident asks for help (open); a volunteer claims it or a coordinator assigns one (assigned);
-- the provider checks in (in_progress) and reports the minutes (reported); the person served
-- confirms and rates it (completed), or disputes it (disputed), which a coordinator settles by
-- confirming (possibly with other minutes) or cancelling. open, assigned and in_progress requests
-- may be cancelled; the provider may withdraw, which makes the request open again.
--
-- Every step is one SECURITY DEFINER function that claims the Idempotency-Key, locks the request's
-- row (SELECT ... FOR UPDATE), checks the caller's right and that the step is allowed from the
-- status it finds under that lock, and does all its effects in the same database transaction: the
-- hold on the member's or the pool's hours is placed on creation, captured to the provider on
-- confirmation (the rest released) or released on cancellation; a community-funded request is
-- credited from issuance on confirmation. The transaction that pays for a request names it
-- (transactions.service_request_id, unique), so its hours move at most once.

create or replace function _system_principal() returns uuid
language sql stable as $$
    select id from principals where kind = 'system';
$$;

create or replace function _service_type_json(p_type service_types) returns jsonb
language sql immutable as $$
    select jsonb_build_object('code', p_type.code, 'name', p_type.name, 'default_minutes', p_type.default_minutes,
                              'active', p_type.active);
$$;

create or replace function create_service_type(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_slug text, p_code text, p_name text, p_default_minutes integer
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_community uuid;
    v_type service_types;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    select id into v_community from communities where slug = p_slug;
    if not found then
        perform _fail('not_found', format('no community %s', p_slug));
    end if;
    perform _authorize(_principal(p_actor), v_community, null, array[]::text[], array['coordinator'],
        format('no community %s', p_slug));
    insert into service_types (community_id, code, name, default_minutes)
    values (v_community, p_code, p_name, p_default_minutes)
    on conflict do nothing
    returning * into v_type;
    if v_type.code is null then
        perform _fail('service_type_exists', format('the service type %s already exists in this community', p_code),
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.code', 'message', 'already used by another service type of this community'))));
    end if;
    v_body := _service_type_json(v_type);
    perform _audit(p_actor::text, null, 'service_type.created', 'community', v_community, v_community, p_request_id,
        v_body);
    perform _idempotency_store(p_actor, p_key, 201, v_body);
    return query select 201, v_body, false;
end;
$$;

-- Rename a service type, change its default minutes, retire it (active false: no new requests) or
-- bring it back. Audited with before and after.
create or replace function update_service_type(
    p_actor uuid, p_request_id text, p_slug text, p_code text, p_name text, p_default_minutes integer, p_active boolean
) returns jsonb
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_community uuid;
    v_old service_types;
    v_new service_types;
begin
    select id into v_community from communities where slug = p_slug;
    if not found then
        perform _fail('not_found', format('no community %s', p_slug));
    end if;
    perform _authorize(_principal(p_actor), v_community, null, array[]::text[], array['coordinator'],
        format('no community %s', p_slug));
    select * into v_old from service_types where community_id = v_community and code = p_code for update;
    if not found then
        perform _fail('not_found', format('no service type %s', p_code));
    end if;
    update service_types
       set name = p_name, default_minutes = p_default_minutes, active = p_active, updated_at = clock_timestamp()
     where community_id = v_community and code = p_code
    returning * into v_new;
    perform _audit(p_actor::text, null, 'service_type.changed', 'community', v_community, v_community, p_request_id,
        jsonb_build_object('code', p_code, 'before', _service_type_json(v_old), 'after', _service_type_json(v_new)));
    return _service_type_json(v_new);
end;
$$;

create or replace function _service_request_json(p_id uuid) returns jsonb
language plpgsql stable as $$
begin
    return (
        select jsonb_build_object(
            'id', r.id,
            'community', c.slug,
            'member_id', r.member_id,
            -- Name and grid as they are now; never the phone or birth date (volunteers read open requests).
            'member_name', m.display_name,
            'grid', m.grid,
            'service_type', r.service_type,
            'minutes', r.minutes,
            'scheduled_at', r.scheduled_at,
            'funding', r.funding,
            'description', r.description,
            'status', r.status,
            'hold_id', r.hold_id,
            'provider_member_id', r.provider_member_id,
            'provider_name', p.display_name,
            'checked_in_at', r.checked_in_at,
            'checked_out_at', r.checked_out_at,
            'reported_minutes', r.reported_minutes,
            'rating', r.rating,
            'comment', r.comment,
            'transaction_id', r.transaction_id,
            'cancel_reason', r.cancel_reason,
            'dispute_reason', r.dispute_reason,
            'created_at', r.created_at,
            'updated_at', r.updated_at)
          from service_requests r
          join communities c on c.id = r.community_id
          join members m on m.id = r.member_id
          left join members p on p.id = r.provider_member_id
         where r.id = p_id
    );
end;
$$;

-- The day a service is for, where the community is (ages and service dates use it).
create or replace function _service_day(p_community_id uuid, p_at timestamptz) returns date
language sql stable as $$
    select (p_at at time zone (select time_zone from communities where id = p_community_id))::date;
$$;

-- What a hold on the hours of a request says about it: the service's name and the request's description.
create or replace function _service_request_hold_description(p_type service_types, p_description text) returns text
language sql immutable as $$
    select left(p_type.name || case when p_description <> '' then ': ' || p_description else '' end, 500);
$$;

create or replace function create_service_request(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_member_id uuid, p_service_type text, p_minutes bigint, p_scheduled_at timestamptz, p_funding text,
    p_description text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_member members;
    v_type service_types;
    v_minutes bigint;
    v_hold uuid;
    v_id uuid := gen_random_uuid();
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    -- A resident asks for itself; a coordinator for any member of its community.
    perform _authorize(v_actor, v_member.community_id, v_member.id, array['resident'], array['coordinator'],
        'no such member');
    if p_funding <> 'own' and not ('admin' = any(v_actor.roles)
                                   or (v_actor.community_id = v_member.community_id
                                       and 'coordinator' = any(v_actor.roles))) then
        perform _fail('forbidden', format('only a coordinator may book a service paid by the %s', p_funding));
    end if;
    select * into v_type from service_types where community_id = v_member.community_id and code = p_service_type;
    if not found or not v_type.active then
        perform _fail('unknown_service_type',
            format('%s is not an active service type of this community', p_service_type),
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.service_type', 'message', 'not an active service type of this community'))));
    end if;
    -- Without minutes, the service type's usual length.
    v_minutes := coalesce(p_minutes, v_type.default_minutes);
    perform _check_amount(_policy(v_member.community_id), v_minutes);
    -- Checked here, after the key is claimed, so a retry after the moment passed still replays.
    if p_scheduled_at < now() - interval '7 days' or p_scheduled_at > now() + interval '366 days' then
        perform _fail('invalid_schedule', 'scheduled_at must lie between 7 days ago and 366 days ahead',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.scheduled_at', 'message', 'between 7 days ago and 366 days ahead'))));
    end if;
    -- Eligibility (60_people.sql), on the day the service is for: own hours need redeem_min_age,
    -- the pool's hours a member marked pool_eligible (when the policy asks for it).
    if p_funding = 'own' then
        perform _require_redeem_age(v_member.community_id, v_member.id,
            _service_day(v_member.community_id, p_scheduled_at));
    elsif p_funding = 'pool' then
        perform _require_pool_eligible(v_member.community_id, v_member.id);
    end if;
    if p_funding = 'own' then
        v_hold := _place_hold(p_actor, _member_account(v_member.id), v_member.id, v_minutes,
            _service_request_hold_description(v_type, p_description), p_scheduled_at + interval '14 days',
            _on_behalf_of(v_actor, v_member.id));
    elsif p_funding = 'pool' then
        v_hold := _place_hold(p_actor, _system_account(v_member.community_id, 'pool'), v_member.id, v_minutes,
            _service_request_hold_description(v_type, p_description), p_scheduled_at + interval '14 days', null);
    end if;
    insert into service_requests (id, community_id, member_id, service_type, minutes, scheduled_at, funding,
                                  description, hold_id, created_by, on_behalf_of)
    values (v_id, v_member.community_id, v_member.id, p_service_type, v_minutes, p_scheduled_at, p_funding,
            p_description, v_hold, p_actor, _on_behalf_of(v_actor, v_member.id));
    v_body := _service_request_json(v_id);
    perform _audit(p_actor::text, _on_behalf_of(v_actor, v_member.id), 'service_request.created', 'service_request',
        v_id, v_member.community_id, p_request_id,
        jsonb_build_object('member_id', v_member.id, 'service_type', p_service_type, 'minutes', v_minutes,
                           'scheduled_at', p_scheduled_at, 'funding', p_funding, 'hold_id', v_hold));
    perform _idempotency_store(p_actor, p_key, 201, v_body);
    return query select 201, v_body, false;
end;
$$;

-- The request, locked for a step; 404 when it does not exist or lies outside the caller's community.
create or replace function _service_request_for_step(p_actor principal_info, p_id uuid) returns service_requests
language plpgsql as $$
declare
    v_request service_requests;
begin
    if p_actor.id is null then
        perform _fail('unauthenticated', 'unknown principal');
    end if;
    select * into v_request from service_requests where id = p_id for update;
    -- As _authorize: those who can see the community (an auditor of all of them too) learn that
    -- the request exists (and are refused below if they may not take the step); others do not.
    if not found or not ('admin' = any(p_actor.roles) or p_actor.community_id = v_request.community_id
                         or (p_actor.kind = 'auditor' and p_actor.community_id is null)) then
        perform _fail('not_found', 'no such service request');
    end if;
    return v_request;
end;
$$;

create or replace function _is_staff(p_actor principal_info, p_request service_requests) returns boolean
language sql immutable as $$
    select 'admin' = any(p_actor.roles)
        or (p_actor.community_id = p_request.community_id and 'coordinator' = any(p_actor.roles));
$$;

create or replace function _invalid_transition(p_request service_requests, p_step text) returns void
language plpgsql as $$
declare
    v_extra jsonb := jsonb_build_object('current_status', p_request.status, 'service_request_id', p_request.id);
begin
    -- One sentence per step, so that each has its translation (timebank/i18n/zh.py).
    case p_step
        when 'assign' then
            perform _fail('invalid_transition', format('a request that is %s cannot be assigned', p_request.status), v_extra);
        when 'check_in' then
            perform _fail('invalid_transition', format('a request that is %s cannot be checked in', p_request.status), v_extra);
        when 'report' then
            perform _fail('invalid_transition', format('a request that is %s cannot be reported', p_request.status), v_extra);
        when 'confirm' then
            perform _fail('invalid_transition', format('a request that is %s cannot be confirmed', p_request.status), v_extra);
        when 'dispute' then
            perform _fail('invalid_transition', format('a request that is %s cannot be disputed', p_request.status), v_extra);
        when 'cancel' then
            perform _fail('invalid_transition', format('a request that is %s cannot be cancelled', p_request.status), v_extra);
        else
            perform _fail('invalid_transition', format('a request that is %s cannot be withdrawn from', p_request.status),
                v_extra);
    end case;
end;
$$;

-- The request's hold, if it is still pending: open and assigned requests whose hold has expired
-- are waiting for the expiry job to cancel them, and take no further step.
create or replace function _pending_request_hold(p_request service_requests) returns holds
language plpgsql as $$
declare
    v_hold holds;
begin
    if p_request.hold_id is null then
        return null;
    end if;
    select * into v_hold from holds where id = p_request.hold_id;
    if v_hold.expires_at <= now() or exists (select 1 from hold_resolutions where hold_id = v_hold.id) then
        perform _fail('invalid_transition',
            format('the hold of this request expired at %s; the request is being cancelled', v_hold.expires_at),
            jsonb_build_object('current_status', p_request.status, 'service_request_id', p_request.id));
    end if;
    return v_hold;
end;
$$;

-- Give the request's hold up: released while pending, marked expired when past its expiry (as the
-- hold expiry job would), nothing when already resolved. p_by: a principal id, or `system`.
create or replace function _resolve_request_hold(p_request service_requests, p_by text) returns text
language plpgsql as $$
declare
    v_hold holds;
begin
    if p_request.hold_id is null then
        return null;
    end if;
    select * into v_hold from holds where id = p_request.hold_id;
    perform 1 from accounts where id = v_hold.account_id for update;
    if exists (select 1 from hold_resolutions where hold_id = v_hold.id) then
        return (select status from hold_resolutions where hold_id = v_hold.id);
    end if;
    if v_hold.expires_at <= now() then
        insert into hold_resolutions (hold_id, status, resolved_by) values (v_hold.id, 'expired', 'system');
        update accounts set held_minutes = held_minutes - v_hold.minutes where id = v_hold.account_id;
        return 'expired';
    end if;
    perform _release_hold(p_by, v_hold);
    return 'released';
end;
$$;

-- The end of every step: its audit event, the answer stored with the key, the answer.
create or replace function _service_request_stepped(
    p_actor uuid, p_key text, p_request_id text, p_request service_requests, p_action text, p_on_behalf_of uuid,
    p_details jsonb
) returns jsonb language plpgsql as $$
declare
    v_body jsonb := _service_request_json(p_request.id);
begin
    perform _audit(coalesce(p_actor::text, 'system'), p_on_behalf_of, p_action, 'service_request', p_request.id,
        p_request.community_id, p_request_id,
        p_details || jsonb_build_object('from', p_request.status, 'to', v_body->'status'));
    if p_key is not null then
        perform _idempotency_store(p_actor, p_key, 200, v_body);
    end if;
    return v_body;
end;
$$;

create or replace function assign_service_request(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_id uuid, p_provider_member_id uuid
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_request service_requests;
    v_provider members;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_request := _service_request_for_step(v_actor, p_id);
    if p_provider_member_id is null or p_provider_member_id = v_actor.member_id then
        -- A volunteer claims the request for itself.
        if v_actor.member_id is null then
            perform _fail('forbidden', 'only a member can claim a request; name the provider_member_id');
        end if;
        if not ('volunteer' = any(v_actor.roles)) then
            perform _fail('not_a_volunteer', 'only volunteers can claim a service request');
        end if;
        v_provider := _member_for_write(v_actor.member_id);
    else
        if not _is_staff(v_actor, v_request) then
            perform _fail('forbidden', 'only a coordinator may assign a request to someone else');
        end if;
        select * into v_provider from members where id = p_provider_member_id;
        if not found or v_provider.community_id <> v_request.community_id then
            perform _fail('not_a_volunteer', 'the provider must be a volunteer of the request''s community',
                jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                    'field', '$.provider_member_id', 'message', 'not a volunteer of this community'))));
        end if;
    end if;
    if v_request.status <> 'open' then
        perform _invalid_transition(v_request, 'assign');
    end if;
    if not ('volunteer' = any(v_provider.roles)) then
        perform _fail('not_a_volunteer', 'only members with the volunteer role can provide a service',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.provider_member_id', 'message', 'not a volunteer'))));
    end if;
    if v_provider.id = v_request.member_id then
        perform _fail('same_account', 'a member cannot provide a service to itself');
    end if;
    -- volunteer_min_age (60_people.sql): old enough on the day the service is for.
    perform _require_volunteer_age(v_request.community_id, v_provider.id,
        _service_day(v_request.community_id, v_request.scheduled_at));
    perform _pending_request_hold(v_request);
    update service_requests
       set status = 'assigned', provider_member_id = v_provider.id, updated_at = clock_timestamp()
     where id = v_request.id;
    return query select 200, _service_request_stepped(p_actor, p_key, p_request_id, v_request,
        'service_request.assigned', null, jsonb_build_object('provider_member_id', v_provider.id)), false;
end;
$$;

create or replace function check_in_service_request(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_id uuid
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_request service_requests;
    v_hold holds;
    v_new_hold uuid;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_request := _service_request_for_step(v_actor, p_id);
    if not (_is_staff(v_actor, v_request) or coalesce(v_actor.member_id = v_request.provider_member_id, false)) then
        perform _fail('forbidden', 'only the provider or a coordinator may check in');
    end if;
    if v_request.status <> 'assigned' then
        perform _invalid_transition(v_request, 'check_in');
    end if;
    v_hold := _pending_request_hold(v_request);
    if v_hold.id is not null then
        -- Work has begun: the hours must still be there when it is confirmed, however long a
        -- report or a dispute takes. The hold is replaced by one lasting a year from now; the
        -- minutes stay held throughout (the account's held total does not change).
        perform _lock_pending_hold(v_hold, array[v_hold.account_id]);
        insert into hold_resolutions (hold_id, status, resolved_by) values (v_hold.id, 'released', p_actor::text);
        insert into holds (community_id, account_id, member_id, minutes, description, expires_at, created_by,
                           on_behalf_of)
        values (v_hold.community_id, v_hold.account_id, v_hold.member_id, v_hold.minutes, v_hold.description,
                greatest(v_hold.expires_at, now() + interval '366 days'), p_actor, v_hold.on_behalf_of)
        returning id into v_new_hold;
    end if;
    update service_requests
       set status = 'in_progress', checked_in_at = clock_timestamp(), hold_id = coalesce(v_new_hold, hold_id),
           updated_at = clock_timestamp()
     where id = v_request.id;
    return query select 200, _service_request_stepped(p_actor, p_key, p_request_id, v_request,
        'service_request.checked_in', _on_behalf_of(v_actor, v_request.provider_member_id),
        jsonb_build_object('replaced_hold_id', v_hold.id, 'hold_id', v_new_hold)), false;
end;
$$;

create or replace function report_service_request(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_id uuid, p_minutes bigint
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_request service_requests;
    v_held bigint;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_request := _service_request_for_step(v_actor, p_id);
    if not (_is_staff(v_actor, v_request) or coalesce(v_actor.member_id = v_request.provider_member_id, false)) then
        perform _fail('forbidden', 'only the provider or a coordinator may report the service');
    end if;
    if v_request.status <> 'in_progress' then
        perform _invalid_transition(v_request, 'report');
    end if;
    perform _check_amount(_policy(v_request.community_id), p_minutes);
    if v_request.hold_id is not null then
        select minutes into v_held from holds where id = v_request.hold_id;
        if p_minutes > v_held then
            perform _fail('capture_exceeds_hold', format('the hold reserves only %s minutes', v_held),
                jsonb_build_object('held_minutes', v_held));
        end if;
    end if;
    update service_requests
       set status = 'reported', reported_minutes = p_minutes, checked_out_at = clock_timestamp(),
           updated_at = clock_timestamp()
     where id = v_request.id;
    return query select 200, _service_request_stepped(p_actor, p_key, p_request_id, v_request,
        'service_request.reported', _on_behalf_of(v_actor, v_request.provider_member_id),
        jsonb_build_object('minutes', p_minutes)), false;
end;
$$;

-- Complete a locked request: move its hours to the provider (capture the hold, or credit from
-- issuance) in a transaction naming the request, record it. Audits the transaction; the caller
-- audits the step. p_actor is the principal (the system principal for the auto-confirmation).
create or replace function _complete_service_request(
    p_actor uuid, p_request_id text, p_request service_requests, p_minutes bigint, p_rating integer, p_comment text
) returns uuid language plpgsql as $$
declare
    v_provider members := _member_for_write(p_request.provider_member_id);
    v_type service_types;
    v_day date := _service_day(p_request.community_id, coalesce(p_request.checked_out_at, now()));
    v_hold holds;
    v_body jsonb;
    v_tx uuid;
begin
    perform _check_amount(_policy(p_request.community_id), p_minutes);
    if p_request.hold_id is not null then
        select * into v_hold from holds where id = p_request.hold_id;
        v_body := _capture_hold(p_actor, p_request_id, v_hold, p_minutes, _member_account(v_provider.id), v_day,
            p_request.id);
    else
        if not ('volunteer' = any(v_provider.roles)) then
            perform _fail('not_a_volunteer', 'only members with the volunteer role can be credited');
        end if;
        select * into v_type from service_types
         where community_id = p_request.community_id and code = p_request.service_type;
        v_body := _post(p_request.community_id, 'credit',
            _service_request_hold_description(v_type, p_request.description), v_day, p_actor, null, null, null,
            p_request_id, array[_system_account(p_request.community_id, 'issuance'), _member_account(v_provider.id)],
            array[-p_minutes, p_minutes], p_request.id);
    end if;
    v_tx := (v_body->>'id')::uuid;
    perform _audit(
        case when p_actor = _system_principal() then 'system' else p_actor::text end,
        (v_body->>'on_behalf_of')::uuid, 'transaction.created', 'transaction', v_tx, p_request.community_id,
        p_request_id,
        jsonb_build_object('service_request_id', p_request.id, 'member_id', v_provider.id, 'minutes', p_minutes,
                           'kind', v_body->'kind', 'postings', v_body->'postings'));
    update service_requests
       set status = 'completed', transaction_id = v_tx, rating = p_rating, comment = p_comment,
           updated_at = clock_timestamp()
     where id = p_request.id;
    return v_tx;
end;
$$;

create or replace function confirm_service_request(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_id uuid, p_rating integer, p_comment text,
    p_minutes bigint
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_request service_requests;
    v_staff boolean;
    v_minutes bigint;
    v_tx uuid;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_request := _service_request_for_step(v_actor, p_id);
    v_staff := _is_staff(v_actor, v_request);
    if not (v_staff or coalesce(v_actor.member_id = v_request.member_id, false)) then
        perform _fail('forbidden', 'only the member served or a coordinator may confirm the service');
    end if;
    if p_minutes is not null and not v_staff then
        perform _fail('forbidden', 'only a coordinator may confirm other minutes than those reported');
    end if;
    if v_request.status = 'disputed' and not v_staff then
        perform _fail('forbidden', 'a disputed service is settled by a coordinator');
    end if;
    if v_request.status not in ('reported', 'disputed') then
        perform _invalid_transition(v_request, 'confirm');
    end if;
    v_minutes := coalesce(p_minutes, v_request.reported_minutes);
    v_tx := _complete_service_request(p_actor, p_request_id, v_request, v_minutes, p_rating, p_comment);
    return query select 200, _service_request_stepped(p_actor, p_key, p_request_id, v_request,
        'service_request.completed', _on_behalf_of(v_actor, v_request.member_id),
        jsonb_build_object('minutes', v_minutes, 'rating', p_rating, 'transaction_id', v_tx)), false;
end;
$$;

create or replace function dispute_service_request(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_id uuid, p_reason text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_request service_requests;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_request := _service_request_for_step(v_actor, p_id);
    if not (_is_staff(v_actor, v_request) or coalesce(v_actor.member_id = v_request.member_id, false)) then
        perform _fail('forbidden', 'only the member served or a coordinator may dispute the service');
    end if;
    if v_request.status <> 'reported' then
        perform _invalid_transition(v_request, 'dispute');
    end if;
    update service_requests
       set status = 'disputed', dispute_reason = p_reason, updated_at = clock_timestamp()
     where id = v_request.id;
    return query select 200, _service_request_stepped(p_actor, p_key, p_request_id, v_request,
        'service_request.disputed', _on_behalf_of(v_actor, v_request.member_id),
        jsonb_build_object('reason', p_reason)), false;
end;
$$;

-- Cancel (the member served, whoever asked, a coordinator), or withdraw (the provider: the request
-- is open again for another volunteer).
create or replace function cancel_service_request(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_id uuid, p_reason text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_request service_requests;
    v_staff boolean;
    v_hold text;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_request := _service_request_for_step(v_actor, p_id);
    v_staff := _is_staff(v_actor, v_request);
    if coalesce(v_actor.member_id = v_request.provider_member_id, false) then
        if v_request.status not in ('assigned', 'in_progress') then
            perform _invalid_transition(v_request, 'withdraw');
        end if;
        update service_requests
           set status = 'open', provider_member_id = null, checked_in_at = null, updated_at = clock_timestamp()
         where id = v_request.id;
        return query select 200, _service_request_stepped(p_actor, p_key, p_request_id, v_request,
            'service_request.withdrawn', null,
            jsonb_build_object('reason', p_reason, 'provider_member_id', v_request.provider_member_id)), false;
        return;
    end if;
    if not (v_staff or coalesce(v_actor.member_id = v_request.member_id, false)
            or p_actor = v_request.created_by) then
        perform _fail('forbidden', 'only the member served, whoever asked or a coordinator may cancel the request');
    end if;
    if v_request.status = 'disputed' and not v_staff then
        perform _fail('forbidden', 'a disputed service is settled by a coordinator');
    end if;
    if v_request.status not in ('open', 'assigned', 'in_progress', 'disputed') then
        perform _invalid_transition(v_request, 'cancel');
    end if;
    v_hold := _resolve_request_hold(v_request, p_actor::text);
    update service_requests
       set status = 'cancelled', cancel_reason = p_reason, updated_at = clock_timestamp()
     where id = v_request.id;
    return query select 200, _service_request_stepped(p_actor, p_key, p_request_id, v_request,
        'service_request.cancelled', _on_behalf_of(v_actor, v_request.member_id),
        jsonb_build_object('reason', p_reason, 'hold', v_hold)), false;
end;
$$;

-- The jobs (actor `system`, p_request_id the run's id). Each takes up to p_limit requests, locks
-- each one (skipping those a person is changing right now; the next run sees them again), checks
-- it still qualifies under the lock and steps it; returns how many it stepped.

-- A reported request neither confirmed nor disputed within 7 days is confirmed, without a rating.
-- One whose hours cannot move now (e.g. the provider's balance cap) is left for a person.
create or replace function auto_confirm_service_requests(p_request_id text, p_limit integer default 100)
returns integer language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_system uuid := _system_principal();
    v_request service_requests;
    v_tx uuid;
    v_count integer := 0;
begin
    for v_request in
        select * from service_requests
         where status = 'reported' and checked_out_at <= now() - interval '7 days'
         order by updated_at limit p_limit
           for update skip locked
    loop
        begin
            v_tx := _complete_service_request(v_system, p_request_id, v_request, v_request.reported_minutes, null, null);
            perform _service_request_stepped(null, null, p_request_id, v_request, 'service_request.completed', null,
                jsonb_build_object('minutes', v_request.reported_minutes, 'transaction_id', v_tx,
                                   'reason', 'not confirmed or disputed within 7 days'));
            v_count := v_count + 1;
        exception when sqlstate 'TB000' then
            raise warning 'service request % not auto-confirmed: %', v_request.id, sqlerrm;
        end;
    end loop;
    return v_count;
end;
$$;

-- An open or assigned request whose hold has expired is cancelled (reason `expired`), its hold marked expired.
create or replace function expire_service_requests(p_request_id text, p_limit integer default 100)
returns integer language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_request service_requests;
    v_hold text;
    v_count integer := 0;
begin
    for v_request in
        select r.* from service_requests r
         where r.status in ('open', 'assigned')
           and r.hold_id is not null
           and exists (select 1 from holds h where h.id = r.hold_id and h.expires_at <= now())
         order by r.updated_at limit p_limit
           for update of r skip locked
    loop
        v_hold := _resolve_request_hold(v_request, 'system');
        update service_requests
           set status = 'cancelled', cancel_reason = 'expired', updated_at = clock_timestamp()
         where id = v_request.id;
        perform _service_request_stepped(null, null, p_request_id, v_request, 'service_request.cancelled', null,
            jsonb_build_object('reason', 'expired', 'hold', v_hold));
        v_count := v_count + 1;
    end loop;
    return v_count;
end;
$$;
