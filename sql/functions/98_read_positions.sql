-- Read-your-writes across processes (sql/migrations/0015_read_positions.sql,
-- timebank/replicas/positions.py). Each is one statement's worth of work on the primary, by key.

-- The primary's WAL insert position now becomes the caller's position, unless it holds a later one
-- (concurrent requests of one caller may get here out of order). Everything the caller's requests
-- have committed so far is at or before it. Returns the caller's position, which is at or past the
-- floor (the floor is a position the primary has already passed).
create or replace function note_read_position(p_caller text) returns pg_lsn
language sql security definer set search_path = timebank, pg_temp as $$
    insert into read_positions as known (caller, lsn) values (p_caller, pg_current_wal_insert_lsn())
    on conflict (caller) do update set lsn = greatest(known.lsn, excluded.lsn)
    returning lsn
$$;

-- The position a standby must have replayed before it may answer this caller: the later of the
-- caller's own and the floor. The floor missing (the table emptied by the primary's crash
-- recovery, or never set) is set to the primary's position now: every write acknowledged before the
-- crash is at or before it, so the positions lost with the table are covered.
create or replace function read_position(p_caller text) returns pg_lsn
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_floor pg_lsn;
    v_own pg_lsn;
begin
    -- One statement, one snapshot: forget_read_positions raises the floor and drops the rows
    -- below it in one transaction, and this sees either both or neither.
    select max(lsn) filter (where caller = ''), max(lsn) filter (where caller = p_caller)
      into v_floor, v_own
      from read_positions where caller in ('', p_caller);
    if v_floor is null then
        v_floor := pg_current_wal_insert_lsn();
        insert into read_positions (caller, lsn) values ('', v_floor) on conflict (caller) do nothing;
    end if;
    return greatest(v_floor, v_own);
end $$;

-- Keep the table small: the floor rises to `p_replayed` (a position every standby has replayed)
-- and the callers' positions at or below it go, in one transaction, so that no read finds a
-- caller's row gone while the floor is still below it. A floor missing is set as read_position
-- sets it. Returns how many callers' positions went.
create or replace function forget_read_positions(p_replayed pg_lsn) returns integer
language plpgsql security definer set search_path = timebank, pg_temp as $$
declare
    v_forgotten integer;
begin
    insert into read_positions as known (caller, lsn) values ('', greatest(pg_current_wal_insert_lsn(), p_replayed))
    on conflict (caller) do update set lsn = greatest(known.lsn, p_replayed);
    delete from read_positions where caller <> '' and lsn <= p_replayed;
    get diagnostics v_forgotten = row_count;
    return v_forgotten;
end $$;
