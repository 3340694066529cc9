-- Names, lists and control (API.md, 2026-12 additions):
--   * each community's time zone (IANA name; dates of services, date filters and reports use it);
--   * one member per phone and per external_ref within a community (409 member_exists);
--   * holds numbered in the order they were placed, so they can be listed newest first and paged;
--   * stored answers of writes carry created_by_name, as every Transaction now does.

alter table communities add column time_zone text not null default 'Asia/Shanghai';
alter table communities add constraint communities_time_zone_length check (char_length(time_zone) between 1 and 64);

-- A database may already hold two members of one community with the same phone or external_ref
-- (nothing refused them before). The unique indexes below cannot be built over such rows, and which
-- record is right is a person's decision, not a migration's: rather than fail with PostgreSQL's
-- "could not create unique index", stop here, name every clash, say how to resolve it, and change
-- nothing (migrations run in one transaction).
do $$
declare
    v_clashes text;
    v_count integer;
begin
    select count(*), string_agg(format('community %s, %s shared by members %s', c.slug, d.field, d.members), E'\n'
                                order by c.slug, d.field, d.members)
      into v_count, v_clashes
      from (select community_id, 'phone' as field, string_agg(id::text, ', ' order by seq) as members
              from members where phone is not null
             group by community_id, phone having count(*) > 1
            union all
            select community_id, 'external_ref', string_agg(id::text, ', ' order by seq)
              from members where external_ref is not null
             group by community_id, external_ref having count(*) > 1) d
      join communities c on c.id = d.community_id;
    if v_count > 0 then
        raise exception using
            message = format('%s phone or external_ref value(s) are shared by several members of one community; '
                             'from now on each must belong to one member only', v_count),
            detail = v_clashes,
            hint = 'Decide which member keeps each value and clear or correct it on the others '
                   '(e.g. update timebank.members set phone = null where id = ''...''), then migrate again. '
                   'This migration changed nothing.';
    end if;
end;
$$;

create unique index members_community_id_phone_key on members (community_id, phone) where phone is not null;
create unique index members_community_id_external_ref_key on members (community_id, external_ref)
    where external_ref is not null;

-- Holds get a sequence number, like transactions and audit events: the keyset of their lists.
-- Existing holds are numbered in the order they were placed; the append-only trigger steps aside
-- for this backfill only (the column is new, no existing value changes).
alter table holds add column seq bigint;
alter table holds disable trigger holds_append_only;
update holds h set seq = o.n
  from (select id, row_number() over (order by created_at, id) as n from holds) o
 where h.id = o.id;
alter table holds enable trigger holds_append_only;
alter table holds alter column seq set not null;
alter table holds alter column seq add generated always as identity;
select setval(pg_get_serial_sequence('holds', 'seq'), coalesce(max(seq), 0) + 1, false) from holds;
alter table holds add constraint holds_seq_key unique (seq);
create index holds_community_id_seq_idx on holds (community_id, seq);
create index holds_member_id_seq_idx on holds (member_id, seq);

-- A retried write answers exactly what was stored; answers stored before this migration lack
-- created_by_name, which every Transaction now has. They get the creator's name as it is now.
update idempotency_keys k
   set response = k.response || jsonb_build_object('created_by_name', coalesce(m.display_name, p.kind))
  from principals p left join members m on m.id = p.member_id
 where k.status_code = 201
   and jsonb_typeof(k.response) = 'object'
   and k.response ? 'postings'
   and not k.response ? 'created_by_name'
   and p.id::text = k.response->>'created_by';
