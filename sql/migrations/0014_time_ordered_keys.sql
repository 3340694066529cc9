-- Time-ordered keys (UUIDv7, RFC 9562) for the rows every credit writes: its transaction and its
-- audit event. A random (v4) key lands on a random leaf of each index that holds it (transactions'
-- primary key, postings by transaction, audit events' primary key and subject): the first change to
-- a page after a checkpoint writes the whole page to the WAL, and on a large ledger nearly every such
-- insert is a first change. Keys that grow with time all land on the newest leaf. Measured with
-- `python -m bench.write_cost --variant` on a 300,000-transaction ledger (README, "Performance"):
-- WAL per credit 13.6 kB -> 7.5 kB, PostgreSQL CPU per credit -10 %.
--
-- The key's first 48 bits are the Unix time in milliseconds (when the row was made, which its
-- created_at says anyway); the rest is random as before (74 random bits). Rows made before keep their
-- keys: nothing orders by id alone.
create or replace function uuid_v7() returns uuid
    language sql volatile parallel safe
    set search_path = pg_catalog
as $$
    -- A v4 UUID with its first 6 bytes replaced by the millisecond clock and its version nibble
    -- 0100 turned into 0111 (bits 52 and 53 of the 128, in set_bit's order).
    select encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
                    from 1 for 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

alter table transactions alter column id set default uuid_v7();
alter table audit_events alter column id set default uuid_v7();
