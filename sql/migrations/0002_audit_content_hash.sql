-- Each audit event carries the SHA-256 of its own content, computed when it is written, so that
-- `timebank verify` notices an event edited after the fact (by anyone able to bypass the
-- append-only trigger) without a global hash chain serialising every write.

create function _audit_event_digest(
    p_id uuid, p_at timestamptz, p_actor text, p_on_behalf_of uuid, p_action text, p_subject_type text,
    p_subject_id uuid, p_community_id uuid, p_request_id text, p_details jsonb
) returns bytea language sql immutable as $$
    select sha256(convert_to(concat_ws(E'\x1f',
        p_id::text,
        (extract(epoch from p_at) * 1000000)::bigint::text,
        p_actor,
        coalesce(p_on_behalf_of::text, ''),
        p_action,
        coalesce(p_subject_type, ''),
        coalesce(p_subject_id::text, ''),
        coalesce(p_community_id::text, ''),
        p_request_id,
        p_details::text), 'UTF8'));
$$;

alter table audit_events add column content_hash bytea;

-- Existing events get their digest once; the append-only trigger steps aside for this backfill only.
alter table audit_events disable trigger audit_events_append_only;
update audit_events
   set content_hash = _audit_event_digest(id, at, actor, on_behalf_of, action, subject_type, subject_id,
                                         community_id, request_id, details);
alter table audit_events enable trigger audit_events_append_only;

alter table audit_events alter column content_hash set not null;
alter table audit_events add constraint audit_events_content_hash_length check (octet_length(content_hash) = 32);
