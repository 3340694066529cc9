-- The keys before migration 0014: random (v4) UUIDs for transactions and audit events. uuid_v7()
-- is what every writing function and both column defaults call, so this one definition turns it back.
create or replace function uuid_v7() returns uuid language sql volatile parallel safe
    set search_path = pg_catalog as $$ select gen_random_uuid() $$;
