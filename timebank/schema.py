"""The schema as migrated: `sql/schema.sql` and a catalog fingerprint to compare databases by."""

from __future__ import annotations

import asyncpg

# One row per schema object, rendered by PostgreSQL itself, so two databases compare equal
# exactly when their tables (logged or not), constraints, indexes, triggers, types and functions do.
FINGERPRINT_QUERY = """
select 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || case when a.attnotnull then ' not null' else '' end
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || case when a.attidentity <> '' then ' identity ' || a.attidentity::text else '' end
  from pg_attribute a
  join pg_class c on c.oid = a.attrelid
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where c.relnamespace = 'timebank'::regnamespace and c.relkind in ('r', 'c') and a.attnum > 0 and not a.attisdropped
union all
select 'table ' || c.relname || ' persistence ' || c.relpersistence::text
  from pg_class c where c.relnamespace = 'timebank'::regnamespace and c.relkind = 'r'
union all
select 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  from pg_constraint where connamespace = 'timebank'::regnamespace
union all
select 'index ' || indexdef from pg_indexes where schemaname = 'timebank'
union all
select 'trigger ' || pg_get_triggerdef(t.oid)
  from pg_trigger t join pg_class c on c.oid = t.tgrelid
 where c.relnamespace = 'timebank'::regnamespace and not t.tgisinternal
union all
select 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
       || md5(pg_get_functiondef(p.oid))
  from pg_proc p where p.pronamespace = 'timebank'::regnamespace
order by 1
"""


async def fingerprint(conn: asyncpg.Connection) -> list[str]:
    """The sorted catalog description of schema `timebank` in the connected database."""
    await conn.execute("set search_path = timebank")
    return [row[0] for row in await conn.fetch(FINGERPRINT_QUERY)]
