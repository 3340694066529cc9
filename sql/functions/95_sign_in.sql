-- Signing in on the pages (issue 11): a member gives its community, member_no (or phone) and PIN.
-- The service checks the PIN's Argon2id hash (never the database); these functions find the member,
-- count wrong PINs with the same counter and 15-minute lock as PIN changes (60_people.sql), and
-- issue the session: a token of the member's own, which the browser keeps in an HttpOnly cookie.

-- The member a sign-in names, with its PIN hash and lock: no row for an unknown community, member
-- or phone, or a member without a PIN (the page says the same for each, so nothing is given away).
create or replace function sign_in_pin_state(p_slug text, p_login text)
returns table (member_id uuid, pin_hash text, locked_until timestamptz)
language sql stable security definer set search_path = timebank, pg_temp as $$
    select m.id, p.pin_hash, p.locked_until
      from communities c
      join members m on m.community_id = c.id
      join member_pins p on p.member_id = m.id
     where c.slug = p_slug and (m.member_no = p_login or m.phone = p_login)
     order by (m.member_no = p_login) desc, m.seq
     limit 1;
$$;

-- A wrong PIN at sign-in: counted like a wrong current_pin; the fifth in a row locks the member's
-- sign-in (and PIN changes) for 15 minutes. Audited as system, without the PIN. Answers the lock's end.
create or replace function record_sign_in_failure(p_request_id text, p_member_id uuid)
returns timestamptz language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_pins member_pins;
begin
    update member_pins
       set failed_attempts = case when locked_until is not null and locked_until <= now() then 1
                                  else failed_attempts + 1 end,
           locked_until = case when locked_until is not null and locked_until <= now() then null else locked_until end
     where member_id = p_member_id
    returning * into v_pins;
    if not found then
        perform _fail('not_found', 'no such member');
    end if;
    if v_pins.failed_attempts >= 5 and v_pins.locked_until is null then
        update member_pins set locked_until = now() + interval '15 minutes' where member_id = p_member_id
        returning * into v_pins;
    end if;
    perform _audit('system', null, 'member.sign_in_failed', 'member', p_member_id,
        (select community_id from members where id = p_member_id), p_request_id,
        jsonb_build_object('failed_attempts', v_pins.failed_attempts, 'locked_until', v_pins.locked_until));
    return v_pins.locked_until;
end;
$$;

-- A right PIN at sign-in: unless the member is locked (checked again here, under the row's lock),
-- the count starts over and the session's token is stored. Answers the lock's end when locked
-- (nothing issued), else null.
create or replace function sign_in_with_pin(p_request_id text, p_member_id uuid, p_token_hash bytea)
returns timestamptz language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_pins member_pins;
    v_principal uuid;
    v_token uuid;
begin
    select * into v_pins from member_pins where member_id = p_member_id for update;
    if not found then
        perform _fail('not_found', 'no such member');
    end if;
    if v_pins.locked_until is not null and v_pins.locked_until > now() then
        return v_pins.locked_until;
    end if;
    update member_pins set failed_attempts = 0, locked_until = null where member_id = p_member_id;
    select id into v_principal from principals where member_id = p_member_id;
    insert into tokens (principal_id, token_hash, created_by) values (v_principal, p_token_hash, 'sign_in')
    returning id into v_token;
    perform _audit(v_principal::text, null, 'member.signed_in', 'member', p_member_id,
        (select community_id from members where id = p_member_id), p_request_id,
        jsonb_build_object('token_id', v_token));
    return null;
end;
$$;

-- Signing out: the session's own token is revoked (and every process forgets it, as for any revocation).
create or replace function sign_out(p_request_id text, p_token_hash bytea)
returns table (listeners integer[]) language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_token tokens;
begin
    select * into v_token from tokens t where t.token_hash = p_token_hash;
    if not found then
        return query select array[]::integer[];
        return;
    end if;
    return query select (_revoke_token(v_token.principal_id::text, v_token, p_request_id)).listeners;
end;
$$;
