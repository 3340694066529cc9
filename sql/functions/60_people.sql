-- People: ages and eligibility, members' changes, PINs and relatives (API.md, v1 additions).
-- The _require_* helpers are what every operation that moves hours calls to apply the community's
-- eligibility rules; each raises a coded error (422 not_eligible, not_a_relative) like _fail.

-- Whole years between a birth date and a day (an age as people count it: it grows on the birthday;
-- someone born on 29 February grows a year on 1 March in other years).
create or replace function _age_on(p_birth_date date, p_on date) returns integer
language sql immutable as $$
    select extract(year from age(p_on::timestamp, p_birth_date::timestamp))::integer;
$$;

-- Today where the community is (its policy's time_zone).
create or replace function _today(p_community_id uuid) returns date
language sql stable as $$
    select (now() at time zone c.time_zone)::date from communities c where c.id = p_community_id;
$$;

-- Refuse a member younger than p_min_age on p_on, or without a birth date when the rule applies.
-- p_rule names the policy field: volunteer_min_age or redeem_min_age.
create or replace function _require_age(
    p_community_id uuid, p_member_id uuid, p_on date, p_min_age integer, p_rule text
) returns void language plpgsql stable as $$
declare
    v_birth_date date;
    v_age integer;
begin
    if p_min_age is null then
        return;
    end if;
    select birth_date into v_birth_date from members where id = p_member_id and community_id = p_community_id;
    if v_birth_date is null then
        if p_rule = 'volunteer_min_age' then
            perform _fail('not_eligible', format('volunteers must be at least %s years old, and member %s has no birth_date on record to show it', p_min_age, p_member_id));
        end if;
        perform _fail('not_eligible', format('redeeming hours needs an age of at least %s, and member %s has no birth_date on record to show it', p_min_age, p_member_id));
    end if;
    v_age := _age_on(v_birth_date, p_on);
    if v_age < p_min_age then
        if p_rule = 'volunteer_min_age' then
            perform _fail('not_eligible', format('volunteers must be at least %s years old; member %s is %s on %s',
                p_min_age, p_member_id, v_age, p_on));
        end if;
        perform _fail('not_eligible', format('redeeming hours needs an age of at least %s; member %s is %s on %s',
            p_min_age, p_member_id, v_age, p_on));
    end if;
end;
$$;

-- volunteer_min_age: credits and service assignment, on the service date.
create or replace function _require_volunteer_age(p_community_id uuid, p_member_id uuid, p_on date) returns void
language plpgsql stable as $$
begin
    perform _require_age(p_community_id, p_member_id, p_on,
        (select volunteer_min_age from communities where id = p_community_id), 'volunteer_min_age');
end;
$$;

-- redeem_min_age: redemptions, holds and own-funded service requests.
create or replace function _require_redeem_age(p_community_id uuid, p_member_id uuid, p_on date) returns void
language plpgsql stable as $$
begin
    perform _require_age(p_community_id, p_member_id, p_on,
        (select redeem_min_age from communities where id = p_community_id), 'redeem_min_age');
end;
$$;

-- pool_requires_eligibility: pool grants and pool-funded requests need the member's pool_eligible flag.
create or replace function _require_pool_eligible(p_community_id uuid, p_member_id uuid) returns void
language plpgsql stable as $$
begin
    if not coalesce((select pool_requires_eligibility from communities where id = p_community_id), false) then
        return;
    end if;
    if not coalesce((select pool_eligible from members where id = p_member_id and community_id = p_community_id),
                    false) then
        perform _fail('not_eligible',
            format('hours from the pool go only to members marked pool_eligible; member %s is not', p_member_id));
    end if;
end;
$$;

-- gift_scope 'relatives': a gift goes only to a linked relative of the giver.
create or replace function _require_gift_scope(p_community_id uuid, p_from uuid, p_to uuid) returns void
language plpgsql stable as $$
begin
    if coalesce((select gift_scope from communities where id = p_community_id), 'community') <> 'relatives' then
        return;
    end if;
    if not exists (select 1 from relatives where member_id = p_from and relative_member_id = p_to) then
        perform _fail('not_a_relative',
            format('this community allows gifts only to relatives; member %s is not a linked relative of member %s',
                   p_to, p_from),
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.to_member_id', 'message', 'not a linked relative of the sender'))));
    end if;
end;
$$;

-- What the relative on one side of a link is to the member on the other side.
create or replace function _relation_inverse(p_relation text) returns text
language sql immutable as $$
    select case p_relation when 'parent' then 'child' when 'child' then 'parent'
                           when 'grandparent' then 'grandchild' when 'grandchild' then 'grandparent'
                           else p_relation end;
$$;

-- A member as the audit trail records it before and after a change (never the PIN, which is elsewhere).
create or replace function _member_audit_json(p_member members) returns jsonb
language sql immutable as $$
    select jsonb_build_object(
        'display_name', p_member.display_name,
        'roles', to_jsonb(p_member.roles),
        'grid', p_member.grid,
        'birth_date', p_member.birth_date,
        'phone', p_member.phone,
        'external_ref', p_member.external_ref,
        'pool_eligible', p_member.pool_eligible);
$$;

-- Only an admin gives or takes the staff roles (coordinator, auditor), or changes a staff member.
create or replace function _require_role_change_allowed(p_actor principal_info, p_old text[], p_new text[])
returns void language plpgsql as $$
begin
    if 'admin' = any(p_actor.roles) then
        return;
    end if;
    if not (coalesce(p_old, array[]::text[]) <@ array['volunteer', 'resident'])
       or not (coalesce(p_new, array[]::text[]) <@ array['volunteer', 'resident']) then
        perform _fail('forbidden', 'only an admin may grant the coordinator or auditor role');
    end if;
end;
$$;

-- A member as the API shows it (Member), for the stored answer of a keyed change.
create or replace function _member_json(p_member_id uuid) returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', m.id, 'community', c.slug, 'display_name', m.display_name, 'roles', to_jsonb(m.roles),
        'grid', m.grid, 'account_id', a.id, 'created_at', m.created_at, 'member_no', m.member_no,
        'pool_eligible', m.pool_eligible,
        'has_pin', exists (select 1 from member_pins p where p.member_id = m.id),
        'birth_date', m.birth_date, 'phone', m.phone, 'external_ref', m.external_ref)
      from members m join communities c on c.id = m.community_id join accounts a on a.member_id = m.id
     where m.id = p_member_id;
$$;

-- PATCH /v1/members/{id} (admin, coordinator): p_changes holds the fields to change, validated by
-- the service. One member.changed event holds the record before and after and the reason.
drop function if exists update_member(uuid, text, uuid, jsonb, text);
create or replace function update_member(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_member_id uuid, p_changes jsonb, p_reason text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_old members;
    v_new members;
    v_unknown text;
    v_roles text[];
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    select * into v_old from members where id = p_member_id for update;
    if not found then
        perform _fail('not_found', 'no such member');
    end if;
    perform _authorize(v_actor, v_old.community_id, null, array[]::text[], array['coordinator'], 'no such member');
    select k into v_unknown from jsonb_object_keys(p_changes) k
     where k not in ('display_name', 'grid', 'birth_date', 'phone', 'external_ref', 'roles', 'pool_eligible') limit 1;
    if v_unknown is not null then
        perform _fail('invalid_request', format('%s is not a member field that can be changed', v_unknown));
    end if;
    if p_changes ? 'roles' then
        v_roles := array(select jsonb_array_elements_text(p_changes->'roles'));
    else
        v_roles := v_old.roles;
    end if;
    -- A coordinator changes volunteers and residents only, and never makes one staff.
    perform _require_role_change_allowed(v_actor, v_old.roles, v_roles);
    update members
       set display_name = case when p_changes ? 'display_name' then p_changes->>'display_name' else display_name end,
           grid = case when p_changes ? 'grid' then p_changes->>'grid' else grid end,
           birth_date = case when p_changes ? 'birth_date' then (p_changes->>'birth_date')::date else birth_date end,
           phone = case when p_changes ? 'phone' then p_changes->>'phone' else phone end,
           external_ref = case when p_changes ? 'external_ref' then p_changes->>'external_ref' else external_ref end,
           roles = v_roles,
           pool_eligible = case when p_changes ? 'pool_eligible'
                                then (p_changes->>'pool_eligible')::boolean else pool_eligible end
     where id = v_old.id
    returning * into v_new;
    perform _audit(p_actor::text, null, 'member.changed', 'member', v_old.id, v_old.community_id, p_request_id,
        jsonb_build_object('before', _member_audit_json(v_old), 'after', _member_audit_json(v_new),
                           'reason', p_reason));
    v_body := _member_json(v_old.id);
    perform _idempotency_store(p_actor, p_key, 200, v_body);
    return query select 200, v_body, false;
end;
$$;

-- Whether the actor acts on its own member record (and is not staff of its community or an admin).
create or replace function _acts_as_self_only(p_actor principal_info, p_member members) returns boolean
language sql immutable as $$
    select p_actor.member_id = p_member.id
       and not ('admin' = any(p_actor.roles))
       and not (p_actor.community_id = p_member.community_id and 'coordinator' = any(p_actor.roles));
$$;

-- The member's own PIN hash and lockout, for the service to check a current_pin (Argon2id is
-- verified in the service). Only for the member itself; anyone else gets no row.
create or replace function member_pin_state(p_actor uuid, p_member_id uuid)
returns table (pin_hash text, locked_until timestamptz)
language plpgsql stable security definer set search_path = timebank, pg_temp as $$
begin
    return query
    select p.pin_hash, p.locked_until
      from member_pins p join principals a on a.member_id = p.member_id
     where p.member_id = p_member_id and a.id = p_actor;
end;
$$;

-- A wrong current_pin from the member itself: counted; the fifth in a row locks PIN changes (and,
-- for issue 11, PIN sign-in) for 15 minutes. Audited without the PIN. Answers the lock's end, if any.
create or replace function record_pin_failure(p_actor uuid, p_request_id text, p_member_id uuid)
returns timestamptz language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_pins member_pins;
begin
    if not exists (select 1 from principals where id = p_actor and member_id = p_member_id) then
        perform _fail('forbidden', 'the caller may not do this');
    end if;
    update member_pins
       set failed_attempts = case when locked_until is not null and locked_until <= now() then 1
                                  else failed_attempts + 1 end,
           locked_until = case when locked_until is not null and locked_until <= now() then null else locked_until end
     where member_id = p_member_id
    returning * into v_pins;
    if v_pins.failed_attempts >= 5 and v_pins.locked_until is null then
        update member_pins set locked_until = now() + interval '15 minutes' where member_id = p_member_id
        returning * into v_pins;
    end if;
    perform _audit(p_actor::text, null, 'member.pin_failed', 'member', p_member_id,
        (select community_id from members where id = p_member_id), p_request_id,
        jsonb_build_object('failed_attempts', v_pins.failed_attempts, 'locked_until', v_pins.locked_until));
    return v_pins.locked_until;
end;
$$;

-- POST /v1/members/{id}/pin: store a new Argon2id hash (made by the service; the PIN never comes
-- here). Admins and the member's coordinators set the PINs of volunteers and residents (a staff
-- member's PIN only an admin or the member itself); the member itself only after the service has
-- checked its current_pin (p_current_pin_ok), so a member's first PIN is set by staff.
create or replace function set_member_pin(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_member_id uuid, p_pin_hash text,
    p_current_pin_ok boolean
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_member members;
    v_self boolean;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    perform _authorize(v_actor, v_member.community_id, v_member.id,
        array['volunteer', 'resident', 'coordinator', 'auditor'], array['coordinator'], 'no such member');
    v_self := _acts_as_self_only(v_actor, v_member);
    if v_self then
        if not exists (select 1 from member_pins where member_id = v_member.id) then
            perform _fail('forbidden', 'a member without a PIN gets its first PIN from a coordinator');
        end if;
        if not coalesce(p_current_pin_ok, false) then
            perform _fail('forbidden', 'current_pin does not match');
        end if;
    elsif v_actor.member_id is distinct from v_member.id then
        perform _require_role_change_allowed(v_actor, v_member.roles, v_member.roles);
    end if;
    insert into member_pins (member_id, pin_hash, set_by)
    values (v_member.id, p_pin_hash, p_actor::text)
    on conflict (member_id) do update
       set pin_hash = excluded.pin_hash, set_at = clock_timestamp(), set_by = excluded.set_by,
           failed_attempts = 0, locked_until = null;
    perform _audit(p_actor::text, _on_behalf_of(v_actor, v_member.id), 'member.pin_set', 'member', v_member.id,
        v_member.community_id, p_request_id, jsonb_build_object('by', case when v_self then 'self' else 'staff' end));
    perform _idempotency_store(p_actor, p_key, 204, 'null'::jsonb);
    return query select 204, 'null'::jsonb, false;
end;
$$;

-- A relative link as GET /v1/members/{id}/relatives shows it, from p_member_id's side.
create or replace function _relative_json(p_member_id uuid, p_relative_member_id uuid) returns jsonb
language sql stable as $$
    select jsonb_build_object('member_id', r.relative_member_id, 'display_name', m.display_name,
                              'relation', r.relation, 'since', r.since)
      from relatives r join members m on m.id = r.relative_member_id
     where r.member_id = p_member_id and r.relative_member_id = p_relative_member_id;
$$;

-- POST /v1/members/{id}/relatives (admin, coordinator): link two members of one community, both
-- sides at once; p_relation is what the relative is to the member.
create or replace function add_relative(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_member_id uuid, p_relative_member_id uuid,
    p_relation text
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info;
    v_member members;
    v_relative members;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    v_actor := _principal(p_actor);
    perform _authorize(v_actor, v_member.community_id, null, array[]::text[], array['coordinator'], 'no such member');
    select * into v_relative from members where id = p_relative_member_id;
    -- Another community's member is, to its coordinators' eyes, no member at all.
    if not found or (v_relative.community_id <> v_member.community_id and not ('admin' = any(v_actor.roles))) then
        perform _fail('not_found', 'no such relative member',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.relative_member_id', 'message', 'no such member'))));
    end if;
    if v_relative.id = v_member.id then
        perform _fail('same_account', 'a member cannot be its own relative',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.relative_member_id', 'message', 'the member itself'))));
    end if;
    if v_relative.community_id <> v_member.community_id then
        perform _fail('cross_community_not_allowed', 'relatives are linked within one community',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.relative_member_id', 'message', 'a member of another community'))));
    end if;
    -- Both sides in one order, so two links of one pair made at once wait for each other.
    perform pg_advisory_xact_lock(hashtextextended(least(v_member.id, v_relative.id)::text, 1));
    if exists (select 1 from relatives where member_id = v_member.id and relative_member_id = v_relative.id) then
        perform _fail('relative_exists', 'these members are already linked as relatives; remove the link to change it',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.relative_member_id', 'message', 'already linked'))));
    end if;
    insert into relatives (member_id, relative_member_id, relation, created_by)
    values (v_member.id, v_relative.id, p_relation, p_actor::text),
           (v_relative.id, v_member.id, _relation_inverse(p_relation), p_actor::text);
    v_body := _relative_json(v_member.id, v_relative.id);
    perform _audit(p_actor::text, null, 'relative.added', 'member', v_member.id, v_member.community_id, p_request_id,
        jsonb_build_object('member_id', v_member.id, 'relative_member_id', v_relative.id, 'relation', p_relation,
                           'inverse_relation', _relation_inverse(p_relation)));
    perform _idempotency_store(p_actor, p_key, 201, v_body);
    return query select 201, v_body, false;
end;
$$;

-- DELETE /v1/members/{id}/relatives/{relative_member_id} (admin, coordinator): both sides go.
drop function if exists remove_relative(uuid, text, uuid, uuid);
create or replace function remove_relative(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_member_id uuid, p_relative_member_id uuid
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_member members;
    v_relation text;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    v_member := _member_for_write(p_member_id);
    perform _authorize(_principal(p_actor), v_member.community_id, null, array[]::text[], array['coordinator'],
        'no such member');
    perform pg_advisory_xact_lock(hashtextextended(least(p_member_id, p_relative_member_id)::text, 1));
    delete from relatives where member_id = p_member_id and relative_member_id = p_relative_member_id
    returning relation into v_relation;
    if not found then
        perform _fail('not_found', 'these members are not linked as relatives');
    end if;
    delete from relatives where member_id = p_relative_member_id and relative_member_id = p_member_id;
    perform _audit(p_actor::text, null, 'relative.removed', 'member', v_member.id, v_member.community_id, p_request_id,
        jsonb_build_object('member_id', v_member.id, 'relative_member_id', p_relative_member_id,
                           'relation', v_relation));
    perform _idempotency_store(p_actor, p_key, 204, 'null'::jsonb);
    return query select 204, 'null'::jsonb, false;
end;
$$;

-- A credit batch as the API shows it: its credits in item order.
create or replace function _credit_batch_json(p_id uuid) returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'id', b.id, 'community', c.slug, 'service_date', b.service_date, 'description', b.description,
        'transactions', coalesce((select jsonb_agg(_transaction_json(t.transaction_id) order by t.position)
                                    from credit_batch_transactions t where t.credit_batch_id = b.id), '[]'::jsonb),
        'total_minutes', b.total_minutes, 'created_at', b.created_at, 'created_by', b.created_by)
      from credit_batches b join communities c on c.id = b.community_id
     where b.id = p_id;
$$;

-- POST /v1/credit-batches (admin, coordinator): credit every volunteer of an activity in one
-- transaction, all or nothing. Each item is checked as post_credit checks a credit (the member
-- belongs to the community and volunteers, the amount follows the policy, the volunteer is old
-- enough on the service date, the balance stays under the cap, no member twice); if any fails, nothing is written
-- and the problem names every failing item ({index, member_id, code}, index 0-based) with the
-- first one's code. Each credit is a transaction with its own transaction.created event.
create or replace function post_credit_batch(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea,
    p_slug text, p_service_date date, p_description text, p_member_ids uuid[], p_minutes bigint[]
) returns table (status_code integer, body jsonb, replayed boolean)
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_policy communities;
    v_batch uuid := gen_random_uuid();
    v_n integer := coalesce(cardinality(p_member_ids), 0);
    v_issuance uuid;
    v_errors jsonb;
    v_first text;
    v_accounts uuid[];
    v_posted integer;
    v_bodies jsonb[];
    v_message text;
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true;
        return;
    end if;
    select * into v_policy from communities where slug = p_slug;
    if not found then
        perform _fail('not_found', format('no community %s', p_slug));
    end if;
    perform _authorize(_principal(p_actor), v_policy.id, null, array[]::text[], array['coordinator'],
        format('no community %s', p_slug));
    if v_n not between 1 and 500 or v_n <> coalesce(cardinality(p_minutes), 0) then
        perform _fail('invalid_request', 'credits must hold 1 to 500 items');
    end if;
    perform _check_service_date(v_policy, p_service_date);
    v_issuance := _system_account(v_policy.id, 'issuance');
    -- Lock every account the batch touches in id order, as every posting does, before the checks.
    v_accounts := array(select a.id from accounts a where a.member_id = any(p_member_ids)
                          and a.community_id = v_policy.id
                        union select v_issuance order by 1);
    perform 1 from accounts where id = any(v_accounts) order by id for update;
    select jsonb_agg(jsonb_build_object(
               'field', format('$.credits[%s]', f.i - 1), 'message', f.message,
               'index', f.i - 1, 'member_id', f.member_id, 'code', f.code) order by f.i),
           (array_agg(f.code order by f.i))[1]
      into v_errors, v_first
      from (select c.i, c.member_id, c.code,
                   case c.code
                       when 'duplicate_member' then 'this member is already in the batch'
                       when 'not_a_member' then 'not a member of this community'
                       when 'not_a_volunteer' then 'the member does not have the volunteer role'
                       when 'amount_out_of_range' then 'minutes outside the community''s range'
                       when 'amount_not_multiple_of_unit' then 'minutes not a multiple of the community''s unit'
                       when 'not_eligible' then 'younger than volunteer_min_age on the service date, or no birth_date'
                       else 'the credit would take the balance above the community''s cap'
                   end as message
              from (select u.i, u.member_id,
                           case
                               when u.i > (select min(d.i) from unnest(p_member_ids) with ordinality d(member_id, i)
                                            where d.member_id = u.member_id) then 'duplicate_member'
                               when m.id is null or m.community_id <> v_policy.id then 'not_a_member'
                               when not ('volunteer' = any(m.roles)) then 'not_a_volunteer'
                               when u.minutes <= 0 or u.minutes > v_policy.max_transaction_minutes
                                   then 'amount_out_of_range'
                               when u.minutes % v_policy.unit_minutes <> 0 then 'amount_not_multiple_of_unit'
                               when v_policy.volunteer_min_age is not null
                                    and (m.birth_date is null
                                         or _age_on(m.birth_date, p_service_date) < v_policy.volunteer_min_age)
                                   then 'not_eligible'
                               when a.balance_minutes + u.minutes > v_policy.max_balance_minutes
                                   then 'balance_cap_exceeded'
                           end as code
                      from unnest(p_member_ids, p_minutes) with ordinality as u(member_id, minutes, i)
                      left join members m on m.id = u.member_id
                      left join accounts a on a.member_id = m.id) c
             where c.code is not null) f;
    if v_errors is not null then
        v_message := format('%s of %s credits break a rule (the first: %s); nothing was credited',
                            jsonb_array_length(v_errors), v_n, v_first);
        -- (Said literally for the codes no other operation raises.)
        if v_first = 'not_a_member' then
            perform _fail('not_a_member', v_message, jsonb_build_object('errors', v_errors));
        elsif v_first = 'duplicate_member' then
            perform _fail('duplicate_member', v_message, jsonb_build_object('errors', v_errors));
        end if;
        perform _fail(v_first, v_message, jsonb_build_object('errors', v_errors));
    end if;
    -- Every credit certainly succeeds now: post them set-based, one transaction and one
    -- transaction.created event each (they carry the batch's id).
    select count(*), array_agg(b.body order by b.n) into v_posted, v_bodies
      from _post_batch(
          array(select i::integer from generate_series(1, v_n) i),
          array(select v_policy.id from generate_series(1, v_n)),
          array(select 'credit'::text from generate_series(1, v_n)),
          array(select p_description from generate_series(1, v_n)),
          array(select p_service_date from generate_series(1, v_n)),
          array(select p_actor from generate_series(1, v_n)),
          array(select null::uuid from generate_series(1, v_n)),
          array(select p_request_id from generate_series(1, v_n)),
          array(select null::text from generate_series(1, v_n)),
          array(select null::bytea from generate_series(1, v_n)),
          array(select v_issuance from generate_series(1, v_n)),
          array(select a.id from unnest(p_member_ids) with ordinality u(member_id, i)
                  join accounts a on a.member_id = u.member_id order by u.i),
          p_minutes,
          array(select jsonb_build_object('member_id', u.member_id, 'minutes', u.minutes, 'credit_batch_id', v_batch)
                  from unnest(p_member_ids, p_minutes) with ordinality u(member_id, minutes, i) order by u.i)) b;
    if v_posted <> v_n then
        raise exception 'credit batch %: % of % credits posted', v_batch, v_posted, v_n;
    end if;
    insert into credit_batches (id, community_id, service_date, description, total_minutes, created_by, request_id)
    values (v_batch, v_policy.id, p_service_date, p_description, (select sum(m) from unnest(p_minutes) m), p_actor,
            p_request_id);
    insert into credit_batch_transactions (credit_batch_id, position, transaction_id)
    select v_batch, t.i, (t.body->>'id')::uuid from unnest(v_bodies) with ordinality t(body, i);
    v_body := _credit_batch_json(v_batch);
    perform _idempotency_store(p_actor, p_key, 201, v_body);
    return query select 201, v_body, false;
end;
$$;
