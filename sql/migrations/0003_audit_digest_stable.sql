-- The audit digest was declared IMMUTABLE, but concat_ws and the text forms of timestamps are only
-- STABLE, so PostgreSQL would not inline it and called it as a function for every event (when an
-- event is written and for every event `timebank verify` re-checks). Declared STABLE it is inlined;
-- PARALLEL SAFE lets verify scan the audit trail with parallel workers. The digest is unchanged.
alter function _audit_event_digest(uuid, timestamptz, text, uuid, text, text, uuid, uuid, text, jsonb)
    stable parallel safe;
