-- People (API.md, v1 additions: "Policy additions", "Members additions"):
--   * eligibility rules in each community's policy: minimum ages for volunteering and for redeeming,
--     whom a member may give hours to, and whether pool grants need the receiver's pool_eligible flag;
--   * members get a short number (member_no, printed on cards and passbooks), a pool_eligible flag
--     and, in a table of its own that the service role cannot read, an Argon2id hash of a PIN;
--   * relatives: a link between two members of one community, recorded for both sides.

alter table communities
    add column volunteer_min_age integer,
    add column redeem_min_age integer,
    add column gift_scope text not null default 'community',
    add column pool_requires_eligibility boolean not null default false,
    -- The last member_no given out in this community (member numbers are never reused).
    add column last_member_no integer not null default 0;
alter table communities
    add constraint communities_volunteer_min_age_range check (volunteer_min_age between 0 and 150),
    add constraint communities_redeem_min_age_range check (redeem_min_age between 0 and 150),
    add constraint communities_gift_scope_known check (gift_scope in ('community', 'relatives')),
    add constraint communities_last_member_no_range check (last_member_no >= 0);

-- member_no: six digits or more, zero-padded, unique in a community and given in the order members
-- were registered. Existing members are numbered in that order (seq) here; new ones by the trigger.
alter table members
    add column member_no text,
    add column pool_eligible boolean not null default false;
update members m set member_no = lpad(o.n::text, 6, '0')
  from (select id, row_number() over (partition by community_id order by seq) as n from members) o
 where o.id = m.id;
update communities c set last_member_no = coalesce((select count(*) from members m where m.community_id = c.id), 0);
alter table members alter column member_no set not null;
alter table members add constraint members_member_no_format check (member_no ~ '^[0-9]{6,}$');
alter table members add constraint members_community_id_member_no_key unique (community_id, member_no);

-- The next number of the member's community, taken under that community's row lock, so two
-- registrations at once get consecutive numbers in the order they commit the counter.
create function assign_member_no() returns trigger
language plpgsql as $$
declare
    v_no integer;
begin
    update communities set last_member_no = last_member_no + 1 where id = new.community_id
    returning last_member_no into v_no;
    new.member_no := lpad(v_no::text, 6, '0');
    return new;
end;
$$;
create trigger members_assign_member_no before insert on members
    for each row execute function assign_member_no();

-- A member's number and community never change once given.
create function reject_member_no_change() returns trigger
language plpgsql as $$
begin
    if new.member_no is distinct from old.member_no or new.community_id is distinct from old.community_id
       or new.id is distinct from old.id or new.seq is distinct from old.seq then
        raise exception using
            errcode = 'TB900',
            message = 'members: id, seq, community_id and member_no never change',
            detail = 'append_only';
    end if;
    return new;
end;
$$;
create trigger members_member_no_fixed before update on members
    for each row execute function reject_member_no_change();

-- A member's PIN, as an Argon2id hash made by the service (argon2-cffi); the PIN itself never
-- reaches the database. Not readable by the service role: it asks member_pin_hash() for one hash
-- when it must verify a PIN. failed_attempts and locked_until count wrong PINs for the lockout.
create table member_pins (
    member_id uuid primary key references members (id),
    pin_hash text not null,
    set_at timestamptz not null default clock_timestamp(),
    set_by text not null,
    failed_attempts integer not null default 0,
    locked_until timestamptz,
    constraint member_pins_pin_hash_argon2id check (pin_hash like '$argon2id$%' and char_length(pin_hash) <= 200),
    constraint member_pins_failed_attempts_range check (failed_attempts >= 0)
);

-- Relatives: one row per side. (member_id, relative_member_id, relation) says what the relative is
-- to the member; the other side's row holds the inverse relation (parent <-> child,
-- grandparent <-> grandchild; spouse, sibling and other are their own inverse).
create table relatives (
    member_id uuid not null references members (id),
    relative_member_id uuid not null references members (id),
    relation text not null,
    since timestamptz not null default clock_timestamp(),
    created_by text not null,
    primary key (member_id, relative_member_id),
    constraint relatives_not_self check (member_id <> relative_member_id),
    constraint relatives_relation_known check (
        relation in ('parent', 'child', 'spouse', 'sibling', 'grandparent', 'grandchild', 'other'))
);
create index relatives_relative_member_id_idx on relatives (relative_member_id);
