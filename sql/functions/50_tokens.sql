-- Tokens after they are issued: authentication that notes their use, listing, and revocation.
--
-- A revocation must reach every process of the service at once, though each keeps a cache of
-- tokens it authenticated. Each process holds one listener connection, LISTENing on
-- timebank_token_revoked and named 'timebank-token-listener' once subscribed. A revocation notifies
-- that channel (delivered when it commits) and returns the pids of the listeners subscribed before it
-- committed; each listener evicts the token and answers on timebank_token_evicted, so the revoker can
-- wait until every one of them has done so before it answers.

-- The record the API shows: never the secret, never its hash.
create or replace function _token_json(p_id uuid) returns jsonb
language sql stable as $$
    select jsonb_build_object('id', t.id, 'created_at', t.created_at, 'last_used_at', t.last_used_at,
                              'revoked_at', r.revoked_at)
      from tokens t left join token_revocations r on r.token_id = t.id
     where t.id = p_id;
$$;

-- Who a token stands for (no row for an unknown or revoked token), and the token's id, by which the
-- service's caches forget it when it is revoked. Notes the use in last_used_at, at most once a minute
-- per token: the service calls this only when its cache misses, so most requests write nothing.
create or replace function authenticate_token(p_token_hash bytea)
returns table (token_id uuid, id uuid, kind text, roles text[], community_id uuid, member_id uuid)
language plpgsql security definer set search_path = timebank, pg_temp as $$
#variable_conflict use_column
declare
    v_token tokens;
begin
    select t.* into v_token
      from tokens t
     where t.token_hash = p_token_hash
       and not exists (select 1 from token_revocations r where r.token_id = t.id);
    if not found then
        return;
    end if;
    if v_token.last_used_at is null or v_token.last_used_at < now() - interval '1 minute' then
        -- Losing this note in a crash costs nothing, so its commit need not wait for the disk.
        perform set_config('synchronous_commit', 'off', true);
        update tokens t set last_used_at = now()
         where t.id = v_token.id and (t.last_used_at is null or t.last_used_at < now() - interval '1 minute');
    end if;
    return query
        select v_token.id, p.id, p.kind,
               case p.kind when 'member' then m.roles when 'admin' then array['admin'] else array['auditor'] end,
               coalesce(m.community_id, p.community_id),
               p.member_id
          from principals p left join members m on m.id = p.member_id
         where p.id = v_token.principal_id;
end;
$$;

-- A member's tokens, newest first, keyset-paged on their sequence number (before p_before_seq).
-- The caller (the service) has decided who may see them; the hashes never leave this function.
create or replace function member_tokens(p_member_id uuid, p_before_seq bigint, p_limit integer)
returns table (seq bigint, id uuid, created_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
language sql stable security definer set search_path = timebank, pg_temp as $$
    select t.seq, t.id, t.created_at, t.last_used_at, r.revoked_at
      from principals p
      join tokens t on t.principal_id = p.id
      left join token_revocations r on r.token_id = t.id
     where p.member_id = p_member_id and (p_before_seq is null or t.seq < p_before_seq)
     order by t.seq desc
     limit least(p_limit, 501);
$$;

-- Revoke one token on behalf of p_actor ('system' or a principal id); revoking a revoked token
-- changes nothing. Either way the revocation is announced again, so the caller can wait for the
-- evictions. Returns the pids of the listeners that will hear of it, and whether it was revoked now.
create or replace function _revoke_token(
    p_actor text, p_token tokens, p_request_id text, out listeners integer[], out revoked_now boolean
) language plpgsql as $$
declare
    v_owner principal_info := _principal(p_token.principal_id);
begin
    -- Listeners subscribe holding this lock shared (LISTEN, then the name, in one transaction). A listener
    -- named here subscribed before this commits and will hear of it; any other subscribes after this
    -- commits and starts with an empty cache.
    perform pg_advisory_xact_lock(hashtext('timebank.token_revocations'));
    select coalesce(array_agg(a.pid order by a.pid), array[]::integer[]) into listeners
      from pg_stat_activity a
     where a.datname = current_database() and a.application_name = 'timebank-token-listener';
    insert into token_revocations (token_id, revoked_by, request_id) values (p_token.id, p_actor, p_request_id)
    on conflict do nothing;
    revoked_now := found;
    if revoked_now then
        perform _audit(p_actor, null, 'token.revoked',
            case when v_owner.member_id is null then 'principal' else 'member' end,
            coalesce(v_owner.member_id, v_owner.id), v_owner.community_id, p_request_id,
            jsonb_build_object('token_id', p_token.id, 'principal_id', v_owner.id, 'kind', v_owner.kind));
    end if;
    perform pg_notify('timebank_token_revoked', p_token.id::text);
end;
$$;

-- POST /v1/tokens/{id}/revoke: an admin; the token's owner itself; a coordinator of the community of
-- the member who owns it. Otherwise 403 when the caller can see that community, else 404 as for an
-- unknown id. Answers the token's record (unchanged when it was revoked before).
create or replace function revoke_token(p_actor uuid, p_request_id text, p_key text, p_hash bytea, p_token_id uuid)
returns table (status_code integer, body jsonb, replayed boolean, listeners integer[])
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_seen idempotency_keys := _idempotency_claim(p_actor, p_key, p_hash);
    v_actor principal_info := _principal(p_actor);
    v_token tokens;
    v_owner principal_info;
    v_listeners integer[];
    v_body jsonb;
begin
    if v_seen.principal_id is not null then
        return query select v_seen.status_code, v_seen.response, true, array[]::integer[];
        return;
    end if;
    select * into v_token from tokens t where t.id = p_token_id;
    if not found then
        perform _fail('not_found', 'no such token');
    end if;
    v_owner := _principal(v_token.principal_id);
    if not ('admin' = any(v_actor.roles)
            or v_actor.id = v_owner.id
            or (v_owner.kind = 'member' and v_actor.community_id = v_owner.community_id
                and 'coordinator' = any(v_actor.roles))) then
        if v_actor.community_id = v_owner.community_id or (v_actor.kind = 'auditor' and v_actor.community_id is null) then
            perform _fail('forbidden', 'the caller may not do this');
        end if;
        perform _fail('not_found', 'no such token');
    end if;
    v_listeners := (_revoke_token(p_actor::text, v_token, p_request_id)).listeners;
    v_body := _token_json(v_token.id);
    perform _idempotency_store(p_actor, p_key, 200, v_body);
    return query select 200, v_body, false, v_listeners;
end;
$$;

-- `timebank token revoke ID`: any token (a member's, an admin's or an auditor's), recorded as system.
-- For the owner's connection only.
create or replace function revoke_token_as_system(p_request_id text, p_token_id uuid)
returns table (body jsonb, revoked_now boolean, listeners integer[])
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_token tokens;
    v_revocation record;
begin
    select * into v_token from tokens t where t.id = p_token_id;
    if not found then
        perform _fail('not_found', 'no such token');
    end if;
    v_revocation := _revoke_token('system', v_token, p_request_id);
    return query select _token_json(v_token.id), v_revocation.revoked_now, v_revocation.listeners;
end;
$$;
