-- The public operations the service calls. Each is SECURITY DEFINER: the service role may call
-- these and read, but never write a table directly. Every state change writes its audit event here.

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
     where t.token_hash = p_token_hash;
    return v_result;
end;
$$;

create or replace function create_community(
    p_actor uuid, p_request_id text, p_slug text, p_name text, p_parent_slug text,
    p_unit_minutes integer, p_max_transaction_minutes bigint, p_max_balance_minutes bigint, p_overdraft_minutes bigint
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
    insert into communities (slug, name, parent_id, unit_minutes, max_transaction_minutes, max_balance_minutes, overdraft_minutes)
    values (p_slug, p_name, v_parent, p_unit_minutes, p_max_transaction_minutes, p_max_balance_minutes, p_overdraft_minutes)
    returning id into v_id;
    insert into accounts (community_id, kind) values (v_id, 'issuance'), (v_id, 'pool'), (v_id, 'services');
    perform _audit(p_actor::text, null, 'community.created', 'community', v_id, v_id, p_request_id,
        jsonb_build_object('slug', p_slug, 'name', p_name, 'parent_slug', p_parent_slug));
    return v_id;
end;
$$;

create or replace function set_policy(
    p_actor uuid, p_request_id text, p_slug text,
    p_unit_minutes integer, p_max_transaction_minutes bigint, p_max_balance_minutes bigint, p_overdraft_minutes bigint
) returns uuid language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_actor principal_info := _principal(p_actor);
    v_old communities;
begin
    select * into v_old from communities where slug = p_slug for update;
    if not found then
        perform _fail('not_found', format('no community %s', p_slug));
    end if;
    perform _authorize(v_actor, v_old.id, null, array[]::text[], array[]::text[], format('no community %s', p_slug));
    update communities
       set unit_minutes = p_unit_minutes, max_transaction_minutes = p_max_transaction_minutes,
           max_balance_minutes = p_max_balance_minutes, overdraft_minutes = p_overdraft_minutes
     where id = v_old.id;
    perform _audit(p_actor::text, null, 'policy.changed', 'community', v_old.id, v_old.id, p_request_id,
        jsonb_build_object(
            'before', jsonb_build_object('unit_minutes', v_old.unit_minutes,
                'max_transaction_minutes', v_old.max_transaction_minutes,
                'max_balance_minutes', v_old.max_balance_minutes, 'overdraft_minutes', v_old.overdraft_minutes),
            'after', jsonb_build_object('unit_minutes', p_unit_minutes,
                'max_transaction_minutes', p_max_transaction_minutes,
                'max_balance_minutes', p_max_balance_minutes, 'overdraft_minutes', p_overdraft_minutes)));
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
