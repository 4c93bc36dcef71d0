// PostGraphile 5 over the Pingyi benchmark database, for `python -m bench.compare`.
//
//   PEER_DATABASE_URL=postgresql://pingyi_app@127.0.0.1:5432/db \
//     node server.mjs --jwks-url http://127.0.0.1:PORT/.well-known/jwks.json [--port 0]
//
// (--database-url URL works too; the harness uses the environment, so that a password in
// the URL stays out of the process list.)
//
// It connects as the service's application role (not owner, not superuser: the forced
// RLS policies apply) and serves POST /graphql with the amber preset over the schema
// `bench_peer` (schema.sql beside this file). Per request, before PostGraphile sees it:
//   - the bearer token is verified as Pingyi verifies it: ES256 against Pingyi's JWKS,
//     header typ at+jwt, iss, aud, exp (and the claims RFC 9068 requires); else 401;
//   - the principal's tenant ids are computed as Pingyi's principal query does (tenants
//     below each grant's org_path, plus the grants' own tenants; the session must be
//     live and the account active), once per session id (`sid`), then cached here for
//     --principal-ttl seconds;
// and PostGraphile's pgSettings sets app.account_id (the token's sub) and app.tenant_ids
// on each transaction, with its usual one `select set_config(...)`.
// It prints one line `READY {json}` when listening and exits when its stdin closes (the
// harness died) or on SIGTERM/SIGINT.

import "./polyfill.mjs";

import { createPublicKey, verify as verifySignature } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

import pg from "pg";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const { values: opts } = parseArgs({
  options: {
    "database-url": { type: "string", default: process.env.PEER_DATABASE_URL },
    "jwks-url": { type: "string" },
    issuer: { type: "string", default: "pingyi" },
    audience: { type: "string", default: "pingyi-api" },
    schema: { type: "string", default: "bench_peer" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "pool-max": { type: "string", default: "10" },
    "principal-ttl": { type: "string", default: "60" },
  },
});
if (!opts["database-url"] || !opts["jwks-url"]) {
  console.error("usage: node server.mjs [--database-url URL] --jwks-url URL [--port N]");
  process.exit(2);
}

// ------------------------------------------------------------------ tokens

const jwks = await (await fetch(opts["jwks-url"])).json();
const keys = new Map(
  jwks.keys
    .filter((k) => k.kty === "EC" && k.crv === "P-256")
    .map((k) => [k.kid, createPublicKey({ key: k, format: "jwk" })]),
);
if (keys.size === 0) throw new Error(`no P-256 key in ${opts["jwks-url"]}`);

function b64json(part) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

/** The claims of a valid Pingyi access token, or null. */
function verifyAccessToken(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const header = b64json(parts[0]);
    if (header.alg !== "ES256") return null;
    const typ = String(header.typ ?? "").toLowerCase();
    if (typ !== "at+jwt" && typ !== "application/at+jwt") return null;
    const key = keys.get(header.kid);
    if (!key) return null;
    const ok = verifySignature(
      "sha256",
      Buffer.from(`${parts[0]}.${parts[1]}`),
      { key, dsaEncoding: "ieee-p1363" },
      Buffer.from(parts[2], "base64url"),
    );
    if (!ok) return null;
    const claims = b64json(parts[1]);
    const now = Math.floor(Date.now() / 1000);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (claims.iss !== opts.issuer || !aud.includes(opts.audience)) return null;
    if (typeof claims.exp !== "number" || claims.exp <= now) return null;
    for (const name of ["sub", "sid", "iat", "jti", "client_id"]) {
      if (claims[name] == null) return null;
    }
    if (!/^[0-9]{1,19}$/.test(String(claims.sub))) return null;
    return claims;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ principal

const pool = new pg.Pool({
  connectionString: opts["database-url"],
  max: Number(opts["pool-max"]),
});

// As service/auth/service.py _PRINCIPAL_SQL: the scope is the tenants below each grant's
// org_path plus the grants' own tenants. Run with app.account_id set, which is what lets
// the application role read its own grants (policy own_grants).
const PRINCIPAL_SQL = `
  WITH grants AS (
    SELECT org_path, tenant_id FROM role_assignments WHERE account_id = $1
  )
  SELECT a.is_active,
         (s.revoked_at IS NULL AND s.expires_at > now()) AS session_live,
         array(SELECT t.id FROM tenants t, grants g WHERE t.path LIKE g.org_path || '%'
               UNION SELECT tenant_id FROM grants ORDER BY 1)::text[] AS tenant_ids
  FROM accounts a JOIN auth_sessions s ON s.account_id = a.id
  WHERE a.id = $1 AND s.id = $2`;

const principalTtlMs = Number(opts["principal-ttl"]) * 1000;
const principals = new Map(); // sid -> { at, promise of {accountId, tenantIds} | null }

async function loadPrincipal(accountId, sessionId) {
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query("select set_config('app.account_id', $1, true)", [accountId]);
    const { rows } = await client.query(PRINCIPAL_SQL, [accountId, sessionId]);
    await client.query("commit");
    const row = rows[0];
    if (!row || !row.session_live || !row.is_active) return null;
    return { accountId, tenantIds: row.tenant_ids.join(",") };
  } catch (e) {
    await client.query("rollback").catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

function principalFor(claims) {
  const key = `${claims.sid}/${claims.sub}`;
  const now = Date.now();
  let entry = principals.get(key);
  if (!entry || now - entry.at > principalTtlMs) {
    entry = { at: now, promise: loadPrincipal(String(claims.sub), String(claims.sid)) };
    entry.promise.catch(() => principals.delete(key));
    principals.set(key, entry);
  }
  return entry.promise;
}

// ------------------------------------------------------------------ PostGraphile

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      pool,
      schemas: [opts.schema],
      // Synchronous: the principal was resolved before the request reached grafserv.
      pgSettings(requestContext) {
        const principal = requestContext.node?.req?.pingyiPrincipal;
        if (!principal) return { "app.account_id": "", "app.tenant_ids": "" };
        return {
          "app.account_id": principal.accountId,
          "app.tenant_ids": principal.tenantIds,
        };
      },
    }),
  ],
  // Reads only: no mutations, no subscriptions.
  schema: { defaultBehavior: "-insert -update -delete" },
  disablePlugins: ["MutationPlugin", "SubscriptionPlugin"],
  grafserv: {
    graphqlPath: "/graphql",
    graphiql: false,
    watch: false,
    websockets: false,
    maxRequestLength: 100_000,
  },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
await serv.addTo(server, false);
const grafservListeners = server.listeners("request");
server.removeAllListeners("request");

function refuse(res, status, code, message) {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  res.writeHead(status, { "content-type": "application/json" });
  res.end(body);
}

server.on("request", (req, res) => {
  const authorization = req.headers.authorization ?? "";
  const [scheme, token] = authorization.split(" ", 2);
  const claims =
    scheme && scheme.toLowerCase() === "bearer" && token ? verifyAccessToken(token.trim()) : null;
  if (!claims) {
    refuse(res, 401, "UNAUTHENTICATED", "invalid or missing bearer token");
    return;
  }
  principalFor(claims).then(
    (principal) => {
      if (!principal) {
        refuse(res, 401, "UNAUTHENTICATED", "session revoked or expired");
        return;
      }
      req.pingyiPrincipal = principal;
      for (const listener of grafservListeners) listener.call(server, req, res);
    },
    (error) => {
      console.error(error);
      refuse(res, 500, "INTERNAL", "principal lookup failed");
    },
  );
});

// Build the schema (introspection happens here, once) before saying READY.
await pgl.getSchema();
server.listen(Number(opts.port), opts.host, () => {
  const pkg = (name) =>
    JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url)))
      .version;
  const info = {
    port: server.address().port,
    node: process.version,
    postgraphile: pkg("postgraphile"),
    grafast: pkg("grafast"),
    pg: pkg("pg"),
    poolMax: Number(opts["pool-max"]),
    withResolversPolyfilled: globalThis.__pingyiWithResolversPolyfilled === true,
  };
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(0), 5000);
  timer.unref();
  server.close();
  server.closeAllConnections?.();
  await pgl.release().catch(() => {});
  await pool.end().catch(() => {});
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The harness holds our stdin open; when it goes away, so do we.
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
