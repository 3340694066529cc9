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
