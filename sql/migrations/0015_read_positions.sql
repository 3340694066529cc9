-- Read replicas (issue 13): each caller's last write position, shared by every process and
-- instance of the service, so that a caller's read through any of them goes only to a standby that
-- has replayed the caller's own writes (timebank/replicas/positions.py).
--
-- UNLOGGED: its rows are never written to the WAL, so they are not replicated (a standby neither
-- needs nor may read them), and a transaction that touches only this table does not wait for a WAL
-- flush at commit. The price: crash recovery of the primary empties the table. The row of the
-- empty caller '' is the floor that covers that: missing, it is set to the primary's position of
-- that moment, which is past every write acknowledged before the crash (read_position).
--
-- Rows are written only through note_read_position, read through read_position and dropped
-- through forget_read_positions (sql/functions/98_read_positions.sql); the service role has no
-- right on the table itself.
create unlogged table read_positions (
    -- A principal's id; '' is the floor, which every read requires.
    caller text primary key,
    lsn pg_lsn not null
);
