-- Sign-in cards (migration 0010): issued by a coordinator of the member's community (or an admin),
-- read when a phone opens /login/card/<secret>. The card names the member; the PIN still follows
-- (95_sign_in.sql), so a lost card alone signs nobody in.

-- Print a new card: the member's previous card, if any, stops working in the same statement.
-- 404 (revealing nothing) for a member outside the actor's community; 403 for its non-staff members.
create or replace function issue_sign_in_card(p_actor uuid, p_request_id text, p_member_id uuid, p_secret_hash bytea)
returns timestamptz language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_member members;
    v_replaced boolean;
    v_at timestamptz := clock_timestamp();
begin
    select * into v_member from members where id = p_member_id;
    if not found then
        perform _fail('not_found', 'no such member');
    end if;
    perform _authorize(_principal(p_actor), v_member.community_id, null, array[]::text[], array['coordinator'],
        'no such member');
    v_replaced := exists (select 1 from sign_in_cards where member_id = p_member_id);
    insert into sign_in_cards (member_id, secret_hash, issued_at, issued_by)
    values (p_member_id, p_secret_hash, v_at, p_actor::text)
    on conflict (member_id) do update
       set secret_hash = excluded.secret_hash, issued_at = excluded.issued_at, issued_by = excluded.issued_by;
    perform _audit(p_actor::text, p_member_id, 'member.sign_in_card_issued', 'member', p_member_id,
        v_member.community_id, p_request_id, jsonb_build_object('replaced', v_replaced));
    return v_at;
end;
$$;

-- The member a card's secret opens: its community's slug and its member_no, which the sign-in with
-- the PIN then takes (sign_in_pin_state); no row for an unknown or replaced card.
create or replace function sign_in_card_member(p_secret_hash bytea)
returns table (community text, member_no text, display_name text)
language sql stable security definer set search_path = timebank, pg_temp as $$
    select c.slug, m.member_no, m.display_name
      from sign_in_cards s
      join members m on m.id = s.member_id
      join communities c on c.id = m.community_id
     where s.secret_hash = p_secret_hash;
$$;

-- When the member's current card was printed (null: none), for the coordinator's page.
create or replace function sign_in_card_issued_at(p_member_id uuid)
returns timestamptz language sql stable security definer set search_path = timebank, pg_temp as $$
    select issued_at from sign_in_cards where member_id = p_member_id;
$$;
