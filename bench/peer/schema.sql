-- What PostGraphile serves, in a schema of its own in the benchmark's throwaway database.
-- Applied by bench/compare.py as the owner after the service's migrations; {app_role} is
-- the service's application role (pingyi_app). Nothing here bypasses row-level security:
-- the views are security_invoker and the function is SECURITY INVOKER (the default), so
-- every read runs as the application role under the forced RLS policies of public.*.

CREATE SCHEMA bench_peer;

-- W1: allOrgUnits(condition: {parentId, archivedAt: null}, orderBy: ID_ASC, first: 20)
CREATE VIEW bench_peer.org_units WITH (security_invoker = true) AS
  SELECT id, parent_id, name, kind, archived_at FROM public.org_units;

-- W2: the tenants list, as Pingyi's `tenants` defines it: tenant top units of a tenant
-- kind, not archived. RLS (app.tenant_ids) confines it to the principal's tenants.
CREATE VIEW bench_peer.tenant_units WITH (security_invoker = true) AS
  SELECT id, name, kind FROM public.org_units
  WHERE id = tenant_id
    AND kind IN ('township', 'development_zone', 'new_district', 'county_department')
    AND archived_at IS NULL;

-- W2: me { username }. accounts has no RLS and the application role may SELECT it (the
-- service's own grants); the function only picks the row of app.account_id.
CREATE TYPE bench_peer.me AS (id bigint, username text);
CREATE FUNCTION bench_peer.me() RETURNS bench_peer.me LANGUAGE sql STABLE AS $$
  SELECT id, username FROM public.accounts WHERE id = public.pingyi_account_id()
$$;

REVOKE ALL ON SCHEMA bench_peer FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION bench_peer.me() FROM PUBLIC;
GRANT USAGE ON SCHEMA bench_peer TO {app_role};
GRANT SELECT ON bench_peer.org_units, bench_peer.tenant_units TO {app_role};
GRANT EXECUTE ON FUNCTION bench_peer.me() TO {app_role};
