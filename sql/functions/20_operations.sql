-- The public operations the service calls. Each is SECURITY DEFINER: the service role may call
-- these and read, but never write a table directly. Every state change writes its audit event here.

-- Who a token stands for (all nulls for an unknown or revoked token), without noting the use; the
-- service itself calls authenticate_token (50_tokens.sql).
create or replace function authenticate(p_token_hash bytea) returns principal_info
language plpgsql stable security definer set search_path = timebank, pg_temp as $$
declare
    v_result principal_info;
begin
    select p.id, p.kind,
           case p.kind when 'member' then m.roles when 'admin' then array['admin'] else array['auditor'] end,
           coalesce(m.community_id, p.community_id),
           p.member_id
      into v_result
      from tokens t join principals p on p.id = t.principal_id left join members m on m.id = p.member_id
     where t.token_hash = p_token_hash
       and not exists (select 1 from token_revocations r where r.token_id = t.id);
    return v_result;
end;
$$;

-- The policy as the API shows it, and as policy.changed events record it (before and after).
create or replace function _policy_json(p_community communities) returns jsonb
language sql immutable as $$
    select jsonb_build_object(
        'unit_minutes', p_community.unit_minutes,
        'max_transaction_minutes', p_community.max_transaction_minutes,
        'max_balance_minutes', p_community.max_balance_minutes,
        'overdraft_minutes', p_community.overdraft_minutes,
        'time_zone', p_community.time_zone,
        'volunteer_min_age', p_community.volunteer_min_age,
        'redeem_min_age', p_community.redeem_min_age,
        'gift_scope', p_community.gift_scope,
        'pool_requires_eligibility', p_community.pool_requires_eligibility);
$$;

-- A time zone must be an IANA name PostgreSQL knows (pg_timezone_names; not an abbreviation such as
-- CST, which means different zones in different places, nor a POSIX rule). p_field is the request's
-- JSON path to it. Reading pg_timezone_names scans the time zone files (tens of milliseconds), so
-- callers skip the check when the name is one already accepted.
create or replace function _check_time_zone(p_time_zone text, p_field text) returns void
language plpgsql stable as $$
begin
    if not exists (select 1 from pg_timezone_names where name = p_time_zone) then
        perform _fail('unknown_time_zone', 'time_zone must be an IANA time zone name such as Asia/Shanghai',
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', p_field, 'message', 'not an IANA time zone name'))));
    end if;
end;
$$;

drop function if exists create_community(uuid, text, text, text, text, integer, bigint, bigint, bigint);
drop function if exists create_community(uuid, text, text, text, text, integer, bigint, bigint, bigint, text);
create or replace function create_community(
    p_actor uuid, p_request_id text, p_slug text, p_name text, p_parent_slug text,
    p_unit_minutes integer, p_max_transaction_minutes bigint, p_max_balance_minutes bigint, p_overdraft_minutes bigint,
    p_time_zone text default 'Asia/Shanghai',
    -- Eligibility (60_people.sql); the defaults keep the rules of communities made before them.
    p_volunteer_min_age integer default null, p_redeem_min_age integer default null,
    p_gift_scope text default 'community', p_pool_requires_eligibility boolean default false
) returns uuid language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_actor principal_info := _principal(p_actor);
    v_parent uuid;
    v_id uuid;
begin
    if not ('admin' = any(v_actor.roles)) then
        perform _fail('forbidden', 'only an admin may create communities');
    end if;
    if p_parent_slug is not null then
        select id into v_parent from communities where slug = p_parent_slug;
        if not found then
            perform _fail('not_found', format('no community %s', p_parent_slug), jsonb_build_object('field', '$.parent_slug'));
        end if;
    end if;
    -- Said plainly here; two creations racing past this check meet communities_slug_key, which
    -- timebank/db.py maps to the same code.
    if exists (select 1 from communities where slug = p_slug) then
        perform _fail('community_exists', format('a community with slug %s already exists', p_slug),
            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                'field', '$.slug', 'message', 'already used by another community'))));
    end if;
    if p_time_zone is distinct from 'Asia/Shanghai' then
        perform _check_time_zone(p_time_zone, '$.policy.time_zone');
    end if;
    insert into communities (slug, name, parent_id, unit_minutes, max_transaction_minutes, max_balance_minutes,
                             overdraft_minutes, time_zone, volunteer_min_age, redeem_min_age, gift_scope,
                             pool_requires_eligibility)
    values (p_slug, p_name, v_parent, p_unit_minutes, p_max_transaction_minutes, p_max_balance_minutes,
            p_overdraft_minutes, p_time_zone, p_volunteer_min_age, p_redeem_min_age, p_gift_scope,
            p_pool_requires_eligibility)
    returning id into v_id;
    insert into accounts (community_id, kind) values (v_id, 'issuance'), (v_id, 'pool'), (v_id, 'services');
    perform _audit(p_actor::text, null, 'community.created', 'community', v_id, v_id, p_request_id,
        jsonb_build_object('slug', p_slug, 'name', p_name, 'parent_slug', p_parent_slug));
    return v_id;
end;
$$;

-- Change a community's policy: p_changes holds the fields to change (PUT sends all of them, PATCH
-- those given); the others keep their value. Validated by the service; the table's checks and the
-- time zone check here stand behind it. One policy.changed event holds the whole policy before and after.
drop function if exists set_policy(uuid, text, text, integer, bigint, bigint, bigint);
create or replace function set_policy(p_actor uuid, p_request_id text, p_slug text, p_changes jsonb)
returns uuid language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_actor principal_info := _principal(p_actor);
    v_old communities;
    v_new communities;
    v_unknown text;
begin
    select * into v_old from communities where slug = p_slug for update;
    if not found then
        perform _fail('not_found', format('no community %s', p_slug));
    end if;
    perform _authorize(v_actor, v_old.id, null, array[]::text[], array[]::text[], format('no community %s', p_slug));
    select k into v_unknown from jsonb_object_keys(p_changes) k
     where k not in (select jsonb_object_keys(_policy_json(v_old))) limit 1;
    if v_unknown is not null then
        perform _fail('invalid_request', format('%s is not a policy field', v_unknown));
    end if;
    if p_changes ? 'time_zone' and p_changes->>'time_zone' is distinct from v_old.time_zone then
        perform _check_time_zone(p_changes->>'time_zone', '$.time_zone');
    end if;
    update communities
       set unit_minutes = case when p_changes ? 'unit_minutes'
                               then (p_changes->>'unit_minutes')::integer else unit_minutes end,
           max_transaction_minutes = case when p_changes ? 'max_transaction_minutes'
                                          then (p_changes->>'max_transaction_minutes')::bigint
                                          else max_transaction_minutes end,
           max_balance_minutes = case when p_changes ? 'max_balance_minutes'
                                      then (p_changes->>'max_balance_minutes')::bigint else max_balance_minutes end,
           overdraft_minutes = case when p_changes ? 'overdraft_minutes'
                                    then (p_changes->>'overdraft_minutes')::bigint else overdraft_minutes end,
           time_zone = case when p_changes ? 'time_zone' then p_changes->>'time_zone' else time_zone end,
           volunteer_min_age = case when p_changes ? 'volunteer_min_age'
                                    then (p_changes->>'volunteer_min_age')::integer else volunteer_min_age end,
           redeem_min_age = case when p_changes ? 'redeem_min_age'
                                 then (p_changes->>'redeem_min_age')::integer else redeem_min_age end,
           gift_scope = case when p_changes ? 'gift_scope' then p_changes->>'gift_scope' else gift_scope end,
           pool_requires_eligibility = case when p_changes ? 'pool_requires_eligibility'
                                            then (p_changes->>'pool_requires_eligibility')::boolean
                                            else pool_requires_eligibility end
     where id = v_old.id
    returning * into v_new;
    perform _audit(p_actor::text, null, 'policy.changed', 'community', v_old.id, v_old.id, p_request_id,
        jsonb_build_object('before', _policy_json(v_old), 'after', _policy_json(v_new)));
    return v_old.id;
end;
$$;

create or replace function create_member(
    p_actor uuid, p_request_id text, p_slug text, p_display_name text, p_roles text[], p_grid text,
    p_birth_date date, p_phone text, p_external_ref text
) returns uuid language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_actor principal_info := _principal(p_actor);
    v_community uuid;
    v_id uuid;
begin
    select id into v_community from communities where slug = p_slug;
    if not found then
        perform _fail('not_found', format('no community %s', p_slug));
    end if;
    perform _authorize(v_actor, v_community, null, array[]::text[], array['coordinator'], format('no community %s', p_slug));
    -- Coordinators register volunteers and residents; only an admin appoints staff and auditors.
    if not ('admin' = any(v_actor.roles)) and not (p_roles <@ array['volunteer', 'resident']) then
        perform _fail('forbidden', 'only an admin may grant the coordinator or auditor role');
    end if;
    insert into members (community_id, display_name, roles, grid, birth_date, phone, external_ref, created_by)
    values (v_community, p_display_name, p_roles, p_grid, p_birth_date, p_phone, p_external_ref, p_actor)
    returning id into v_id;
    insert into principals (kind, member_id) values ('member', v_id);
    insert into accounts (community_id, kind, member_id) values (v_community, 'member', v_id);
    perform _audit(p_actor::text, null, 'member.created', 'member', v_id, v_community, p_request_id,
        jsonb_build_object('roles', to_jsonb(p_roles), 'grid', p_grid));
    return v_id;
end;
$$;

-- Issue a token for a member (p_actor null: the command line, recorded as system).
create or replace function issue_member_token(p_actor uuid, p_request_id text, p_member_id uuid, p_token_hash bytea)
returns uuid language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_member members;
    v_principal uuid;
    v_token uuid;
begin
    select * into v_member from members where id = p_member_id;
    if not found then
        perform _fail('not_found', 'no such member');
    end if;
    if p_actor is not null then
        perform _authorize(_principal(p_actor), v_member.community_id, null, array[]::text[], array['coordinator'],
            'no such member');
    end if;
    select id into v_principal from principals where member_id = p_member_id;
    insert into tokens (principal_id, token_hash, created_by)
    values (v_principal, p_token_hash, coalesce(p_actor::text, 'system'))
    returning id into v_token;
    perform _audit(coalesce(p_actor::text, 'system'), null, 'token.issued', 'member', p_member_id,
        v_member.community_id, p_request_id, jsonb_build_object('token_id', v_token));
    return v_principal;
end;
$$;

-- Create a principal that is not a member (an admin, or an auditor of one community or all) with a token.
create or replace function create_principal_token(
    p_kind text, p_community_slug text, p_token_hash bytea, p_request_id text
) returns uuid language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_community uuid;
    v_principal uuid;
begin
    if p_community_slug is not null then
        select id into v_community from communities where slug = p_community_slug;
        if not found then
            perform _fail('not_found', format('no community %s', p_community_slug));
        end if;
    end if;
    insert into principals (kind, community_id) values (p_kind, v_community) returning id into v_principal;
    insert into tokens (principal_id, token_hash, created_by) values (v_principal, p_token_hash, 'system');
    perform _audit('system', null, 'token.issued', 'principal', v_principal, v_community, p_request_id,
        jsonb_build_object('kind', p_kind));
    return v_principal;
end;
$$;

-- Guarantee an admin principal whose token has this hash (TIMEBANK_ADMIN_TOKEN at start-up).
create or replace function ensure_admin_token(p_token_hash bytea, p_request_id text) returns uuid
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_principal uuid;
begin
    perform pg_advisory_xact_lock(hashtext('timebank.ensure_admin_token'));
    select t.principal_id into v_principal
      from tokens t join principals p on p.id = t.principal_id
     where t.token_hash = p_token_hash and p.kind = 'admin';
    if found then
        -- Revocation is permanent: a revoked token cannot be made an admin's token again.
        if exists (select 1 from tokens t join token_revocations r on r.token_id = t.id where t.token_hash = p_token_hash) then
            perform _fail('conflict', 'TIMEBANK_ADMIN_TOKEN was revoked; choose a new token');
        end if;
        return v_principal;
    end if;
    if exists (select 1 from tokens where token_hash = p_token_hash) then
        perform _fail('conflict', 'TIMEBANK_ADMIN_TOKEN is already the token of a non-admin principal');
    end if;
    return create_principal_token('admin', null, p_token_hash, p_request_id);
end;
$$;

-- Remember a write that failed on a rule, so a retry with the same key gets the same answer, and
-- record the rejection in the audit trail. Returns the stored row when the key was taken meanwhile.
create or replace function record_rejected_write(
    p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_status integer, p_body jsonb,
    p_action text, p_details jsonb
) returns idempotency_keys language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_row idempotency_keys;
begin
    if p_key is not null then
        insert into idempotency_keys (principal_id, key, request_hash, status_code, response)
        values (p_actor, p_key, p_hash, p_status, p_body)
        on conflict do nothing;
        if not found then
            select * into v_row from idempotency_keys where principal_id = p_actor and key = p_key;
            return v_row;
        end if;
    end if;
    perform _audit(coalesce(p_actor::text, 'anonymous'), null, p_action, null, null,
        (_principal(p_actor)).community_id, p_request_id, p_details);
    return v_row;
end;
$$;

-- Record a request refused before it could write (401/403: request.denied; a malformed or refused
-- write: write.rejected), so the trail shows who knocked and what was turned away.
drop function if exists record_denied_request(uuid, text, jsonb);
create or replace function record_refused_request(p_action text, p_actor uuid, p_request_id text, p_details jsonb)
returns void language plpgsql security definer set search_path = timebank, pg_temp as $$
begin
    if p_action not in ('request.denied', 'write.rejected') then
        perform _fail('invalid_request', 'not a refusal');
    end if;
    perform _audit(coalesce(p_actor::text, 'anonymous'), null, p_action, null, null,
        (_principal(p_actor)).community_id, left(p_request_id, 200), p_details);
end;
$$;
