-- Set-based writes: many operations of one kind posted by one statement per table, in one database
-- transaction (one commit, one lock per touched account, one INSERT per table).
--
-- A batch operation (post_credits, post_transfers) takes only the operations that certainly
-- succeed: the Idempotency-Key is new (claimed first, in (principal, key) order, as the single
-- operation claims its key before it locks accounts), the caller may make them, the amounts follow
-- the community's policy and every account stays within its limits at its place in the batch.
-- The claim of an operation left out is released again before the batch commits.
-- It answers (n, status_code, body) for each operation it posted, n being the operation's 1-based
-- position in the arrays. Every other operation is left out of the answer, untouched, for the
-- caller to run through the single operation (post_credit, post_transfer), which replays, refuses
-- or posts it with that operation's exact rules. Each posted operation writes exactly what the
-- single operation would have: the same transaction, postings, balances, audit event and
-- idempotency record. Joins are written in the order they should run (join_collapse_limit = 1), and
-- not by hashing (enable_hashjoin = off): on a new deployment analyzed while empty, the statistics
-- said a hash of every community was cheap, and the batch ran 17-29 % slower than on the same
-- database unanalyzed (bench workload j, 2026-12-08).

-- Post two-legged transactions (minutes from p_from[j] to p_to[j]) for the positions j of the
-- arrays, all checked by the caller except the accounts' limits, which are checked here under the
-- locks, in batch order. An operation whose accounts would leave their limits at any point is left
-- out together with every other operation on those accounts (repeatedly, until what is left fits).
create or replace function _post_batch(
    p_n integer[], p_community_id uuid[], p_kind text[], p_description text[], p_service_date date[],
    p_actor uuid[], p_on_behalf_of uuid[], p_request_id text[], p_key text[], p_hash bytea[],
    p_from uuid[], p_to uuid[], p_minutes bigint[], p_details jsonb[]
) returns table (n integer, body jsonb)
language plpgsql set join_collapse_limit = 1 set enable_seqscan = off set enable_hashjoin = off as $$
#variable_conflict use_column
declare
    v_keep integer[];
    v_accounts uuid[];
    v_bad uuid[];
    v_now timestamptz;
begin
    v_keep := array(select j from generate_subscripts(p_n, 1) j order by j);
    if cardinality(v_keep) = 0 then
        return;
    end if;
    -- Lock every account the batch touches in id order, as every single operation does, and take
    -- the time after the locks so that, per account, created_at follows posting order.
    v_accounts := array(select distinct x from unnest(p_from || p_to) x order by x);
    perform 1 from accounts a where a.id = any(v_accounts) order by a.id for update;
    select greatest(clock_timestamp(), max(a.updated_at)) into v_now from accounts a where a.id = any(v_accounts);

    loop
        with legs as (
            select j, 1 as leg, p_from[j] as account_id, -p_minutes[j] as minutes from unnest(v_keep) j
            union all
            select j, 2 as leg, p_to[j] as account_id, p_minutes[j] as minutes from unnest(v_keep) j
        ),
        running as (
            select l.account_id, l.minutes, a.kind, c.overdraft_minutes, c.max_balance_minutes,
                   a.balance_minutes + sum(l.minutes) over (partition by l.account_id order by l.j, l.leg) as after,
                   case when a.held_minutes = 0 then 0 else _held_minutes(a.id) end as held
              from legs l
              join accounts a on a.id = l.account_id
              join communities c on c.id = a.community_id
        )
        select array_agg(distinct r.account_id) into v_bad
          from running r
         where (r.minutes < 0 and r.kind = 'member' and r.after - r.held < -r.overdraft_minutes)
            or (r.minutes < 0 and r.kind = 'pool' and r.after - r.held < 0)
            or (r.minutes > 0 and r.kind = 'member' and r.after > r.max_balance_minutes);
        exit when v_bad is null;
        v_keep := array(select j from unnest(v_keep) j where p_from[j] <> all(v_bad) and p_to[j] <> all(v_bad));
    end loop;
    perform _release_keys(p_actor, p_key, array(select j from generate_subscripts(p_n, 1) j where j <> all(v_keep)));
    if cardinality(v_keep) = 0 then
        return;
    end if;

    return query
    with ops as materialized (
        select j, p_n[j] as n, uuid_v7() as tx, p_community_id[j] as community_id, c.slug,
               p_kind[j] as kind, p_description[j] as description, p_service_date[j] as service_date,
               p_actor[j] as actor, coalesce(am.display_name, ap.kind) as actor_name,
               p_on_behalf_of[j] as on_behalf_of, p_request_id[j] as request_id,
               p_key[j] as key, p_hash[j] as hash, p_from[j] as from_account, p_to[j] as to_account,
               p_minutes[j] as minutes, p_details[j] as details
          from unnest(v_keep) j
          join communities c on c.id = (p_community_id[j])
          -- The creator's name, as _principal_name gives it.
          join principals ap on ap.id = (p_actor[j])
          left join members am on am.id = ap.member_id
    ),
    legs as materialized (
        -- Each transaction's two postings, in the order the single operation writes them.
        select o.j, l.leg, o.tx, l.account_id, l.minutes
          from ops o
         cross join lateral (values (1, o.from_account, -o.minutes), (2, o.to_account, o.minutes))
               as l(leg, account_id, minutes)
    ),
    running as materialized (
        select l.*, a.balance_minutes + sum(l.minutes) over w as balance_after,
               a.version + row_number() over w as version
          from legs l join accounts a on a.id = l.account_id
        window w as (partition by l.account_id order by l.j, l.leg)
    ),
    bodies as materialized (
        select o.*, jsonb_build_object(
                   'id', o.tx,
                   'community', o.slug,
                   'kind', o.kind,
                   'postings', jsonb_build_array(
                        jsonb_build_object('account_id', o.from_account, 'minutes', -o.minutes),
                        jsonb_build_object('account_id', o.to_account, 'minutes', o.minutes)),
                   'description', o.description,
                   'service_date', o.service_date,
                   'created_at', v_now,
                   'created_by', o.actor,
                   'created_by_name', o.actor_name,
                   'on_behalf_of', o.on_behalf_of,
                   'reverses', null,
                   'reversed_by', null,
                   'hold_id', null,
                   'service_request_id', null) as body
          from ops o
    ),
    new_transactions as (
        insert into transactions (id, community_id, kind, description, service_date, created_at, created_by,
                                  on_behalf_of, reverses, hold_id, request_id)
        select o.tx, o.community_id, o.kind, o.description, o.service_date, v_now, o.actor,
               o.on_behalf_of, null, null, o.request_id
          from ops o order by o.j
    ),
    new_postings as (
        insert into postings (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
        select r.tx, r.account_id, r.minutes, r.balance_after, r.version, v_now
          from running r order by r.j, r.leg
    ),
    account_updates as (
        update accounts a
           set balance_minutes = f.balance_after, version = f.version, updated_at = v_now
          from (select distinct on (r.account_id) r.account_id, r.balance_after, r.version
                  from running r order by r.account_id, r.j desc, r.leg desc) f
         where a.id = f.account_id
    ),
    events as materialized (
        select b.*, uuid_v7() as event_id, clock_timestamp() as at,
               b.details || jsonb_build_object('kind', b.body->'kind', 'postings', b.body->'postings') as event_details
          from bodies b
    ),
    new_events as (
        insert into audit_events (id, at, actor, on_behalf_of, action, subject_type, subject_id, community_id,
                                  request_id, details, content_hash)
        select e.event_id, e.at, e.actor::text, e.on_behalf_of, 'transaction.created', 'transaction', e.tx,
               e.community_id, e.request_id, e.event_details,
               _audit_event_digest(e.event_id, e.at, e.actor::text, e.on_behalf_of, 'transaction.created',
                                   'transaction', e.tx, e.community_id, e.request_id, e.event_details)
          from events e order by e.j
    ),
    stored_keys as (
        update idempotency_keys k set status_code = 201, response = b.body
          from bodies b
         where k.principal_id = b.actor and k.key = b.key
    )
    select b.n, b.body from bodies b order by b.j;
end;
$$;

-- Claim the Idempotency-Key of each operation, as _idempotency_claim does for one: the first use of
-- each key in the batch, by a principal that exists. Claims are taken in (principal, key) order, so
-- two batches never wait for each other's keys in a cycle; a key claimed meanwhile by a concurrent
-- request is waited for, then left to it. Answers the positions whose key this batch now holds.
create or replace function _claim_keys(p_actor uuid[], p_key text[], p_hash bytea[]) returns integer[]
language plpgsql set enable_seqscan = off as $$
declare
    v_claimed integer[];
begin
    with firsts as materialized (
        select distinct on (i.actor, i.key) i.actor, i.key, i.hash, i.n::integer as n
          from unnest(p_actor, p_key, p_hash) with ordinality as i(actor, key, hash, n)
         where octet_length(i.key) between 1 and 200 and i.hash is not null
           and exists (select 1 from principals p where p.id = i.actor)
         order by i.actor, i.key, i.n
    ),
    claimed as (
        insert into idempotency_keys (principal_id, key, request_hash, status_code, response)
        select f.actor, f.key, f.hash, 0, 'null'::jsonb from firsts f order by f.actor, f.key
        on conflict do nothing
        returning principal_id, key
    )
    select coalesce(array_agg(f.n order by f.n), array[]::integer[]) into v_claimed
      from firsts f join claimed c on c.principal_id = f.actor and c.key = f.key;
    return v_claimed;
end;
$$;

-- Give back the keys claimed for the operations at positions p_n, which the batch leaves out.
create or replace function _release_keys(p_actor uuid[], p_key text[], p_n integer[]) returns void
language plpgsql set enable_seqscan = off as $$
begin
    delete from idempotency_keys k
     using unnest(p_n) n
     where k.principal_id = p_actor[n] and k.key = p_key[n] and k.status_code = 0;
end;
$$;

-- Credits: post_credit for many requests at once.
create or replace function post_credits(
    p_actor uuid[], p_request_id text[], p_key text[], p_hash bytea[],
    p_member_id uuid[], p_minutes bigint[], p_service_date date[], p_description text[]
) returns table (n integer, status_code integer, body jsonb)
language plpgsql security definer set search_path = timebank, pg_temp set join_collapse_limit = 1 set enable_seqscan = off as $$
#variable_conflict use_column
declare
    v_claimed integer[] := _claim_keys(p_actor, p_key, p_hash);
    v_ops record;
begin
    -- The caller is an admin or a coordinator of the volunteer's community; the amount follows
    -- the policy. Issuance has no limits; the volunteer's cap is checked by _post_batch.
    select array_agg(o.n order by o.n) as n, array_agg(m.community_id order by o.n) as community_id,
           array_agg(ia.id order by o.n) as issuance, array_agg(ma.id order by o.n) as account,
           array_agg(jsonb_build_object('member_id', m.id, 'minutes', p_minutes[o.n]) order by o.n) as details
      into v_ops
      from unnest(v_claimed) o(n)
      join members m on m.id = (p_member_id[o.n])
      join communities c on c.id = m.community_id
      join principals p on p.id = (p_actor[o.n])
      left join members pm on pm.id = p.member_id
      join accounts ma on ma.member_id = m.id
      join accounts ia on ia.community_id = m.community_id and ia.kind = 'issuance' and ia.kind <> 'member'
     where 'volunteer' = any(m.roles)
       and (p.kind = 'admin'
            or (p.kind = 'member' and pm.community_id = m.community_id and 'coordinator' = any(pm.roles)))
       and p_minutes[o.n] > 0 and p_minutes[o.n] <= c.max_transaction_minutes
       and p_minutes[o.n] % c.unit_minutes = 0
       -- As _check_service_date: not after today in the community's time zone.
       and (p_service_date[o.n]) <= (now() at time zone c.time_zone)::date
       -- As _require_volunteer_age: old enough on the service date.
       and (c.volunteer_min_age is null
            or (m.birth_date is not null and _age_on(m.birth_date, p_service_date[o.n]) >= c.volunteer_min_age));
    perform _release_keys(p_actor, p_key,
        array(select n from unnest(v_claimed) n where n <> all(coalesce(v_ops.n, array[]::integer[]))));
    if v_ops.n is null then
        return;
    end if;
    return query
    select b.n, 201, b.body
      from _post_batch(v_ops.n, v_ops.community_id,
                       array(select 'credit'::text from unnest(v_ops.n)),
                       array(select p_description[i] from unnest(v_ops.n) i),
                       array(select p_service_date[i] from unnest(v_ops.n) i),
                       array(select p_actor[i] from unnest(v_ops.n) i),
                       array(select null::uuid from unnest(v_ops.n)),
                       array(select p_request_id[i] from unnest(v_ops.n) i),
                       array(select p_key[i] from unnest(v_ops.n) i),
                       array(select p_hash[i] from unnest(v_ops.n) i),
                       v_ops.issuance, v_ops.account,
                       array(select p_minutes[i] from unnest(v_ops.n) i),
                       v_ops.details) b;
end;
$$;

-- Gifts between two members of one community: post_transfer (to_pool false) for many requests.
create or replace function post_transfers(
    p_actor uuid[], p_request_id text[], p_key text[], p_hash bytea[],
    p_from_member_id uuid[], p_to_member_id uuid[], p_to_pool boolean[], p_minutes bigint[], p_description text[]
) returns table (n integer, status_code integer, body jsonb)
language plpgsql security definer set search_path = timebank, pg_temp set join_collapse_limit = 1 set enable_seqscan = off as $$
#variable_conflict use_column
declare
    v_claimed integer[] := _claim_keys(p_actor, p_key, p_hash);
    v_ops record;
begin
    -- The caller is an admin, a coordinator of the sender's community or the sender itself (a
    -- volunteer or resident); the recipient is another member of that community; the amount
    -- follows the policy. The sender's floor and the recipient's cap are checked by _post_batch.
    select array_agg(o.n order by o.n) as n, array_agg(f.community_id order by o.n) as community_id,
           array_agg(case when p.member_id = f.id then null else f.id end order by o.n) as on_behalf_of,
           array_agg(fa.id order by o.n) as from_account, array_agg(ta.id order by o.n) as to_account,
           array_agg(jsonb_build_object('from_member_id', f.id, 'to_member_id', t.id, 'to_pool', false,
                                        'minutes', p_minutes[o.n]) order by o.n) as details
      into v_ops
      from unnest(v_claimed) o(n)
      join members f on f.id = (p_from_member_id[o.n])
      join members t on t.id = (p_to_member_id[o.n])
      join communities c on c.id = f.community_id
      join principals p on p.id = (p_actor[o.n])
      left join members pm on pm.id = p.member_id
      join accounts fa on fa.member_id = f.id
      join accounts ta on ta.member_id = t.id
     where not p_to_pool[o.n]
       and t.id <> f.id and t.community_id = f.community_id
       -- As _require_gift_scope: with gift_scope 'relatives', only to a linked relative.
       and (c.gift_scope = 'community'
            or exists (select 1 from relatives r where r.member_id = f.id and r.relative_member_id = t.id))
       and (p.kind = 'admin'
            or (p.kind = 'member' and pm.community_id = f.community_id and 'coordinator' = any(pm.roles))
            or (p.kind = 'member' and p.member_id = f.id and pm.roles && array['volunteer', 'resident']))
       and p_minutes[o.n] > 0 and p_minutes[o.n] <= c.max_transaction_minutes
       and p_minutes[o.n] % c.unit_minutes = 0;
    perform _release_keys(p_actor, p_key,
        array(select n from unnest(v_claimed) n where n <> all(coalesce(v_ops.n, array[]::integer[]))));
    if v_ops.n is null then
        return;
    end if;
    return query
    select b.n, 201, b.body
      from _post_batch(v_ops.n, v_ops.community_id,
                       array(select 'transfer'::text from unnest(v_ops.n)),
                       array(select p_description[i] from unnest(v_ops.n) i),
                       array(select null::date from unnest(v_ops.n)),
                       array(select p_actor[i] from unnest(v_ops.n) i),
                       v_ops.on_behalf_of,
                       array(select p_request_id[i] from unnest(v_ops.n) i),
                       array(select p_key[i] from unnest(v_ops.n) i),
                       array(select p_hash[i] from unnest(v_ops.n) i),
                       v_ops.from_account, v_ops.to_account,
                       array(select p_minutes[i] from unnest(v_ops.n) i),
                       v_ops.details) b;
end;
$$;

-- Redemptions: post_redemption for many requests at once (to a provider member, or to the
-- community's services account when no provider is named).
create or replace function post_redemptions(
    p_actor uuid[], p_request_id text[], p_key text[], p_hash bytea[],
    p_member_id uuid[], p_minutes bigint[], p_description text[], p_provider_member_id uuid[]
) returns table (n integer, status_code integer, body jsonb)
language plpgsql security definer set search_path = timebank, pg_temp set join_collapse_limit = 1 set enable_seqscan = off as $$
#variable_conflict use_column
declare
    v_claimed integer[] := _claim_keys(p_actor, p_key, p_hash);
    v_ops record;
begin
    -- The caller is an admin, a coordinator of the member's community or the member itself as a
    -- resident; a provider, when named, is another member of that community; the amount follows
    -- the policy. The member's floor and the provider's cap are checked by _post_batch.
    select array_agg(o.n order by o.n) as n, array_agg(m.community_id order by o.n) as community_id,
           array_agg(case when p.member_id = m.id then null else m.id end order by o.n) as on_behalf_of,
           array_agg(ma.id order by o.n) as from_account, array_agg(coalesce(pa.id, sa.id) order by o.n) as to_account,
           array_agg(jsonb_build_object('member_id', m.id, 'minutes', p_minutes[o.n],
                                        'provider_member_id', pr.id) order by o.n) as details
      into v_ops
      from unnest(v_claimed) o(n)
      join members m on m.id = (p_member_id[o.n])
      join communities c on c.id = m.community_id
      join principals p on p.id = (p_actor[o.n])
      left join members pm on pm.id = p.member_id
      join accounts ma on ma.member_id = m.id
      left join members pr on pr.id = (p_provider_member_id[o.n])
      left join accounts pa on pa.member_id = pr.id
      join accounts sa on sa.community_id = m.community_id and sa.kind = 'services' and sa.kind <> 'member'
     where (p_provider_member_id[o.n] is null
            or (pr.id is not null and pr.id <> m.id and pr.community_id = m.community_id))
       -- As _require_redeem_age: old enough today in the community's time zone.
       and (c.redeem_min_age is null
            or (m.birth_date is not null
                and _age_on(m.birth_date, (now() at time zone c.time_zone)::date) >= c.redeem_min_age))
       and (p.kind = 'admin'
            or (p.kind = 'member' and pm.community_id = m.community_id and 'coordinator' = any(pm.roles))
            or (p.kind = 'member' and p.member_id = m.id and 'resident' = any(pm.roles)))
       and p_minutes[o.n] > 0 and p_minutes[o.n] <= c.max_transaction_minutes
       and p_minutes[o.n] % c.unit_minutes = 0;
    perform _release_keys(p_actor, p_key,
        array(select n from unnest(v_claimed) n where n <> all(coalesce(v_ops.n, array[]::integer[]))));
    if v_ops.n is null then
        return;
    end if;
    return query
    select b.n, 201, b.body
      from _post_batch(v_ops.n, v_ops.community_id,
                       array(select 'redemption'::text from unnest(v_ops.n)),
                       array(select p_description[i] from unnest(v_ops.n) i),
                       array(select null::date from unnest(v_ops.n)),
                       array(select p_actor[i] from unnest(v_ops.n) i),
                       v_ops.on_behalf_of,
                       array(select p_request_id[i] from unnest(v_ops.n) i),
                       array(select p_key[i] from unnest(v_ops.n) i),
                       array(select p_hash[i] from unnest(v_ops.n) i),
                       v_ops.from_account, v_ops.to_account,
                       array(select p_minutes[i] from unnest(v_ops.n) i),
                       v_ops.details) b;
end;
$$;
