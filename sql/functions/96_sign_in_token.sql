-- Signing in on the pages with an access token (PAGES.md: "an admin token may also sign in at
-- /login?token"): admins and auditors have no PIN. The page is given a token the person holds; this
-- issues a session token of the SAME principal, so signing out revokes the session and never the
-- token the person keeps for the API. Only a principal whose live token is presented gets a session:
-- the service role cannot mint a session (least of all an admin's) for a principal by its id alone.
-- Answers the principal, or null when the token presented is unknown or revoked.
create or replace function sign_in_with_token(p_request_id text, p_presented_hash bytea, p_session_hash bytea)
returns uuid language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_principal principals;
    v_token uuid;
begin
    select p.* into v_principal
      from tokens t join principals p on p.id = t.principal_id
     where t.token_hash = p_presented_hash
       and not exists (select 1 from token_revocations r where r.token_id = t.id);
    if not found then
        return null;
    end if;
    insert into tokens (principal_id, token_hash, created_by) values (v_principal.id, p_session_hash, 'sign_in')
    returning id into v_token;
    perform _audit(v_principal.id::text, null, 'principal.signed_in', 'principal', v_principal.id,
        coalesce(v_principal.community_id, (select community_id from members where id = v_principal.member_id)),
        p_request_id, jsonb_build_object('token_id', v_token, 'kind', v_principal.kind));
    return v_principal.id;
end;
$$;
