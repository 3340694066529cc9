-- The public log's operations. The service role reads the log tables and calls these; it writes none
-- of them directly. The leaf bytes (RFC 8785 canonical JSON) and the signatures are made outside the
-- database (timebank/log/): here the tree is kept whole and honest, node by node.

-- The fields of leaf format 1 of a transaction (README, "The public log"): the transaction as
-- GET /v1/transactions/{id} serves it, without reversed_by (it changes when the transaction is
-- reversed) and without created_by_name (a display name, which can change). Fields added to the API
-- later do not join the leaf: a leaf never changes once logged.
create or replace view log_leaf_source as
    select t.id as transaction_id, t.xact_id, t.seq,
           jsonb_build_object(
               'id', t.id,
               'community', c.slug,
               'kind', t.kind,
               'postings', p.postings,
               'description', t.description,
               'service_date', t.service_date,
               'created_at', t.created_at,
               'created_by', t.created_by,
               'on_behalf_of', t.on_behalf_of,
               'reverses', t.reverses,
               'hold_id', t.hold_id,
               'service_request_id', t.service_request_id) as leaf
      from transactions t
      join communities c on c.id = t.community_id
      left join lateral (
          select jsonb_agg(jsonb_build_object('account_id', p.account_id, 'minutes', p.minutes) order by p.id)
                 as postings
            from postings p where p.transaction_id = t.id
      ) p on true;

create or replace function _log_leaf_json(p_id uuid) returns jsonb
language sql stable as $$
    select leaf from log_leaf_source where transaction_id = p_id;
$$;

-- What the sealer should log next: visible transactions at or after the watermark that have no leaf
-- yet, in (xact_id, seq) order. Run it in a repeatable-read transaction to read the state and the
-- candidates in one snapshot. A plain SQL function (no SECURITY DEFINER, no SET: the service role
-- reads these tables itself), so that PostgreSQL inlines it: a cursor over it then builds leaves as
-- they are fetched instead of all of them before the first row, and the watermark, given as two
-- scalars, is an index condition rather than a filter over every row logged before it. The caller
-- sets jit off: the planner overestimates the per-row leaf builds and would compile for longer
-- than they take.
create or replace function log_pending(p_limit integer)
returns table (transaction_id uuid, xact_id xid8, seq bigint, leaf jsonb)
language sql stable as $$
    with next as materialized (
        select t.id, t.xact_id, t.seq
          from transactions t
         where (t.xact_id, t.seq) >= ((select s.watermark_xact from log_state s), (select s.watermark_seq from log_state s))
           and not exists (select 1 from log_leaves l where l.transaction_id = t.id)
         order by t.xact_id, t.seq
         limit p_limit
    )
    -- Lateral and fenced (offset 0), so that only these rows' leaves are built, each by index.
    select n.id, n.xact_id, n.seq, v.leaf
      from next n cross join lateral (select leaf from log_leaf_source v where v.transaction_id = n.id offset 0) v
     order by n.xact_id, n.seq;
$$;

-- Append leaves p_from.. for the given transactions, with every complete subtree they complete,
-- and move the watermark. Refuses (TB000 log_moved) when the tree is no longer p_from leaves long
-- (another sealer got there first), and refuses any node that is not the hash of its two children
-- or that is missing or extra, so a wrong tree cannot be stored even by a faulty sealer.
create or replace function log_append(
    p_from bigint, p_transaction_ids uuid[], p_levels smallint[], p_indexes bigint[], p_hashes bytea[],
    p_watermark_xact xid8, p_watermark_seq bigint
) returns bigint
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_state log_state;
    v_to bigint := p_from + coalesce(cardinality(p_transaction_ids), 0);
    v_expected bigint := 0;
    v_level integer := 0;
    v_bad bigint;
begin
    select * into v_state from log_state for update;
    if v_state.tree_size <> p_from then
        raise exception using errcode = 'TB000', detail = 'log_moved',
            message = format('the log has %s leaves, not %s', v_state.tree_size, p_from);
    end if;
    insert into log_leaves (leaf_index, transaction_id)
    select p_from + i - 1, id from unnest(p_transaction_ids) with ordinality as x(id, i);
    insert into log_nodes (level, index, hash)
    select * from unnest(p_levels, p_indexes, p_hashes);
    -- Exactly the nodes the new leaves make: for each level, indexes (from >> level) .. (to >> level) - 1.
    while (v_to >> v_level) > 0 loop
        v_expected := v_expected + (v_to >> v_level) - (p_from >> v_level);
        v_level := v_level + 1;
    end loop;
    -- Each node's children are nodes given here or the old tree's complete subtrees (its right edge):
    -- joined in memory, not looked up one by one.
    with known as materialized (
        select * from unnest(p_levels, p_indexes, p_hashes) as n(level, index, hash)
        union all
        select x.level, x.index, x.hash
          from generate_series(0, 62) g
          join log_nodes x on x.level = g and x.index = (p_from >> (g + 1)) << 1
         where (p_from >> g) & 1 = 1
    )
    select count(*) filter (where n.index < (p_from >> n.level) or n.index >= (v_to >> n.level)
                               or (n.level > 0 and n.hash is distinct from
                                   sha256('\x01'::bytea || l.hash || r.hash)))
      into v_bad
      from unnest(p_levels, p_indexes, p_hashes) as n(level, index, hash)
      left join known l on l.level = n.level - 1 and l.index = 2 * n.index
      left join known r on r.level = n.level - 1 and r.index = 2 * n.index + 1;
    if v_bad > 0 or coalesce(cardinality(p_levels), 0) <> v_expected then
        raise exception using errcode = 'TB000', detail = 'invalid_request',
            message = format('the nodes given are not the %s the new leaves complete', v_expected);
    end if;
    update log_state
       set tree_size = v_to,
           watermark_xact = greatest(watermark_xact, p_watermark_xact),
           watermark_seq = case when p_watermark_xact > watermark_xact then p_watermark_seq
                                when p_watermark_xact = watermark_xact then greatest(watermark_seq, p_watermark_seq)
                                else watermark_seq end;
    return v_to;
end;
$$;

-- Record a signed checkpoint. Its root must be the stored tree's at its size (recomputed here from
-- the stored complete subtrees), and one size has one root: a second, different note of a size
-- already recorded is refused; the same note again is a no-op.
create or replace function log_record_checkpoint(p_tree_size bigint, p_root bytea, p_note text)
returns void
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_size bigint;
    v_root bytea;
    v_existing log_checkpoints;
    v_lo bigint := 0;
    v_level integer;
    v_parts bytea[] := '{}';
    v_i integer;
begin
    select tree_size into v_size from log_state;
    if p_tree_size < 1 or p_tree_size > v_size then
        raise exception using errcode = 'TB000', detail = 'invalid_request',
            message = format('the log has %s leaves, too few for a checkpoint of size %s', v_size, p_tree_size);
    end if;
    -- The root: the complete subtrees of [0, size), largest first, folded from the right.
    for v_level in reverse 62..0 loop
        if (p_tree_size >> v_level) & 1 = 1 then
            v_parts := v_parts || (select hash from log_nodes where level = v_level and index = v_lo >> v_level);
            v_lo := v_lo + (1::bigint << v_level);
        end if;
    end loop;
    v_root := v_parts[cardinality(v_parts)];
    for v_i in reverse cardinality(v_parts) - 1..1 loop
        v_root := sha256('\x01'::bytea || v_parts[v_i] || v_root);
    end loop;
    if v_root is distinct from p_root then
        raise exception using errcode = 'TB000', detail = 'invalid_request',
            message = format('the root given is not the log''s root at size %s', p_tree_size);
    end if;
    select * into v_existing from log_checkpoints where tree_size = p_tree_size;
    if found then
        if v_existing.root_hash = p_root and v_existing.note = p_note then
            return;
        end if;
        raise exception using errcode = 'TB000', detail = 'conflict',
            message = format('a different checkpoint of size %s is already recorded', p_tree_size);
    end if;
    insert into log_checkpoints (tree_size, root_hash, note) values (p_tree_size, p_root, p_note);
end;
$$;

-- Everything an inclusion proof needs, in one statement (one snapshot, one round trip): the leaf's
-- index and JSON, the latest signed size, the note signed at p_tree_size (default the latest), and
-- the stored hashes the proof is folded from. Those are a superset, found without walking the
-- tree: the leaf, at every level the sibling of the leaf's ancestor when that sibling is complete
-- within the size, and the complete subtrees that make up the tree of that size (its right edge,
-- whose tail is any partial sibling range). About 2·log2(size) rows, each by primary key. Plain
-- SQL (no SET, not SECURITY DEFINER: the service role reads these tables itself), so PostgreSQL
-- inlines it into the caller's prepared statement instead of planning its body on every call.
create or replace function log_inclusion(p_transaction_id uuid, p_tree_size bigint)
returns table (leaf_index bigint, leaf text, latest bigint, tree_size bigint, note text,
               levels smallint[], indexes bigint[], hashes bytea[])
language sql stable as $$
    select l.leaf_index, v.leaf::text, c.latest, s.size, k.note, n.levels, n.indexes, n.hashes
      from (select max(x.tree_size) as latest from log_checkpoints x) c
      cross join lateral (select coalesce(p_tree_size, c.latest) as size) s
      left join log_leaves l on l.transaction_id = p_transaction_id
      left join log_checkpoints k on k.tree_size = s.size
      left join lateral (select leaf from log_leaf_source v where v.transaction_id = l.transaction_id offset 0) v
        on true
      left join lateral (
          select array_agg(x.level order by x.level, x.index) as levels,
                 array_agg(x.index order by x.level, x.index) as indexes,
                 array_agg(x.hash order by x.level, x.index) as hashes
            from (select 0 as level, l.leaf_index as index
                  union
                  select g, (l.leaf_index >> g) # 1 from generate_series(0, 62) g
                   where ((l.leaf_index >> g) # 1) < (s.size >> g)
                  union
                  select g, (s.size >> (g + 1)) << 1 from generate_series(0, 62) g
                   where (s.size >> g) & 1 = 1) w
            join log_nodes x on x.level = w.level and x.index = w.index
      ) n on l.leaf_index < s.size;
$$;
