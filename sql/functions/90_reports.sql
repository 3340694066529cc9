-- Monthly reports (API.md "Reports", DOMAIN.md rule 10): figures of a month computed from the
-- postings, per community and grid, by set-based reads. The service decides who may read them;
-- like every function the service role may call, these are SECURITY DEFINER with a pinned path.
--
-- What each figure counts (minutes of transactions created in [p_from, p_to), gross: a reversal
-- in the month is counted in reversed_minutes and does not reduce the figure of its original):
--   earned_minutes    credited to members (credit: issuance -> member), and paid to a provider
--                     member for a service (redemption or hold_capture to a member);
--   redeemed_minutes  spent on services: by members (redemption, hold_capture), to the community's
--                     services account or to a provider; and by the pool for a pool-funded service
--                     request (counted for the member served);
--   gifted_minutes    given by members to members (transfer);
--   donated_minutes   given by members to the pool (donation);
--   granted_minutes   given from the pool to members (pool_grant);
--   reversed_minutes  reversals: the amount of each reversed transaction;
--   active_volunteers members who earned minutes in the month;
--   services_completed service requests completed in the month (their transaction was made in it);
--   people_served     members served by those requests;
--   rating_sum, rating_count: of those requests' ratings (the average is their quotient; a request
--                     confirmed by the system job has none);
--   outstanding_minutes per grid: the grid's members' balances at the month's end; in the total:
--                     minus the issuance balances at the month's end (members + pool + services).
-- Each figure is counted in the grid of the member it is about: the member credited, granted or
-- paid; the member who redeemed, gave or donated; for a reversal, that member of the original; for
-- a service request, the member served (also for the reversal of one the pool paid for).
-- A member's grid is its grid now (members keep no history of their grid).

-- A report reads a month of a community's history: a sequential scan may be its right plan, so it
-- keeps the planner's full choice in the service's sessions, which otherwise never pick one
-- (timebank/db.py). SQL functions are planned afresh at each call, so no stale plan is kept here.
drop function if exists report_month(uuid[], timestamptz, timestamptz);
create or replace function report_month(p_communities uuid[], p_from timestamptz, p_to timestamptz)
returns table (
    community_id uuid, grid text, is_total boolean,
    earned_minutes bigint, redeemed_minutes bigint, gifted_minutes bigint, donated_minutes bigint,
    granted_minutes bigint, reversed_minutes bigint, active_volunteers bigint, outstanding_minutes bigint,
    services_completed bigint, people_served bigint, rating_sum bigint, rating_count bigint
)
language sql stable security definer set search_path = timebank, pg_temp set enable_seqscan = on
-- A month of a large community is tens of thousands of rows: hashed in memory, never compiled
-- (JIT costs more than the whole query here). The parameters hide how many rows a month holds, so
-- the planner guesses few and joins the month's postings to its transactions by sorting both on
-- their uuid (EXPLAIN: a merge join after two sorts, a quarter of the time); a hash join is the
-- right plan at every size.
set jit = off
set work_mem = '64MB'
set enable_mergejoin = off
as $$
with tx as materialized (
    select t.id, t.kind, t.service_request_id, o.kind as original_kind, o.service_request_id as original_request
      from transactions t
      left join lateral (select o.kind, o.service_request_id from transactions o
                          where t.kind = 'reversal' and o.id = t.reverses) o on true
     where t.community_id = any(p_communities) and t.created_at >= p_from and t.created_at < p_to
), legs as materialized (
    -- The month's postings on member accounts, account by account (postings carry created_at, the
    -- transaction's, so each account's month is one range of postings_account_id_created_at_idx).
    -- Members first: members_community_id_seq_idx finds a community's members (accounts have no
    -- index on their community for member accounts).
    select m.id as member_id, p.transaction_id, p.minutes
      from members m
      join accounts a on a.member_id = m.id
     cross join lateral (
            select p.transaction_id, p.minutes
              from postings p
             where p.account_id = a.id and p.created_at >= p_from and p.created_at < p_to
            offset 0  -- keeps the per-account range scan: a hash over every posting would not scale
           ) p
     where m.community_id = any(p_communities)
), flows as (
    select l.member_id,
           coalesce(sum(l.minutes) filter (
               where l.minutes > 0 and tx.kind in ('credit', 'redemption', 'hold_capture')), 0) as earned,
           coalesce(sum(-l.minutes) filter (
               where l.minutes < 0 and tx.kind in ('redemption', 'hold_capture')), 0) as redeemed,
           coalesce(sum(-l.minutes) filter (where l.minutes < 0 and tx.kind = 'transfer'), 0) as gifted,
           coalesce(sum(-l.minutes) filter (where l.minutes < 0 and tx.kind = 'donation'), 0) as donated,
           coalesce(sum(l.minutes) filter (where l.minutes > 0 and tx.kind = 'pool_grant'), 0) as granted,
           -- The member the original was about: credited or granted (its posting is negated in the
           -- reversal), else the one who paid, gave or donated (its posting is now positive).
           coalesce(sum(abs(l.minutes)) filter (
               where tx.kind = 'reversal'
                 and (l.minutes < 0) = (tx.original_kind in ('credit', 'pool_grant'))), 0) as reversed
      from legs l join tx on tx.id = l.transaction_id
     group by l.member_id
), served as (
    -- Requests completed in the month: their transaction (one per request) was made in it.
    select r.member_id, count(*) as completed, sum(r.rating) as rating_sum, count(r.rating) as rating_count,
           coalesce(sum((select sum(p.minutes) from postings p where p.transaction_id = tx.id and p.minutes > 0))
                    filter (where r.funding = 'pool'), 0) as pool_minutes
      from tx join service_requests r on r.id = tx.service_request_id
     where tx.service_request_id is not null
     group by r.member_id
), pool_reversals as (
    -- A reversed pool-funded service had no member paying: its reversal is the member served's.
    select r.member_id,
           sum((select sum(p.minutes) from postings p where p.transaction_id = tx.id and p.minutes > 0)) as minutes
      from tx join service_requests r on r.id = tx.original_request
     where tx.original_request is not null and r.funding = 'pool'
     group by r.member_id
), balances as (
    select m.id as member_id, m.community_id, m.grid,
           coalesce((select p.balance_after_minutes from postings p
                      where p.account_id = a.id and p.created_at < p_to
                      order by p.created_at desc, p.account_version desc limit 1), 0) as balance
      from members m join accounts a on a.member_id = m.id
     where m.community_id = any(p_communities) and m.created_at < p_to
), issuance as (
    select coalesce(sum((select p.balance_after_minutes from postings p
                          where p.account_id = a.id and p.created_at < p_to
                          order by p.created_at desc, p.account_version desc limit 1)), 0)::bigint as balance
      from accounts a
     where a.community_id = any(p_communities) and a.kind = 'issuance'
)
select b.community_id, b.grid, grouping(b.community_id, b.grid) <> 0,
       coalesce(sum(f.earned), 0)::bigint, (coalesce(sum(f.redeemed), 0) + coalesce(sum(s.pool_minutes), 0))::bigint,
       coalesce(sum(f.gifted), 0)::bigint, coalesce(sum(f.donated), 0)::bigint,
       coalesce(sum(f.granted), 0)::bigint, (coalesce(sum(f.reversed), 0) + coalesce(sum(v.minutes), 0))::bigint,
       count(*) filter (where f.earned > 0),
       case when grouping(b.community_id, b.grid) <> 0 then -(select balance from issuance)
            else sum(b.balance)::bigint end,
       coalesce(sum(s.completed), 0)::bigint, count(s.member_id), coalesce(sum(s.rating_sum), 0)::bigint,
       coalesce(sum(s.rating_count), 0)::bigint
  from balances b
  left join flows f on f.member_id = b.member_id
  left join served s on s.member_id = b.member_id
  left join pool_reversals v on v.member_id = b.member_id
 group by grouping sets ((b.community_id, b.grid), ())
$$;

-- The community and every community below it (API.md: communities form a tree through parent_slug).
create or replace function community_subtree(p_community_id uuid) returns uuid[]
language sql stable security definer set search_path = timebank, pg_temp as $$
    with recursive tree(id) as (
        select p_community_id
        union
        select c.id from communities c join tree t on c.parent_id = t.id
    )
    select array_agg(id) from tree;
$$;

-- The month's completed service requests by service type (of every community given; a code names the
-- same service in each): how many, their minutes (what moved), the mean of their ratings (2 places,
-- null when none was rated). Every service type of those communities is listed, done or not, in the
-- order they were made (the six defaults first, as API.md lists them).
drop function if exists report_month_service_types(uuid[], timestamptz, timestamptz);
create or replace function report_month_service_types(p_communities uuid[], p_from timestamptz, p_to timestamptz)
returns table (service_type text, name text, services_completed bigint, minutes bigint, average_rating numeric)
language sql stable security definer set search_path = timebank, pg_temp set enable_seqscan = on
set jit = off
as $$
with done as (
    select r.service_type, r.rating,
           (select sum(p.minutes) from postings p where p.transaction_id = t.id and p.minutes > 0) as minutes
      from transactions t join service_requests r on r.id = t.service_request_id
     where t.community_id = any(p_communities) and t.created_at >= p_from and t.created_at < p_to
       and t.service_request_id is not null
), types as (
    select st.code, min(st.created_at) as created_at,
           (array_agg(st.name order by st.community_id = p_communities[1] desc, st.created_at))[1] as name
      from service_types st
     where st.community_id = any(p_communities)
     group by st.code
)
select ty.code, ty.name, count(d.service_type), coalesce(sum(d.minutes), 0)::bigint, round(avg(d.rating), 2)
  from types ty left join done d on d.service_type = ty.code
 group by ty.code, ty.name, ty.created_at
 order by ty.created_at, ty.code
$$;
