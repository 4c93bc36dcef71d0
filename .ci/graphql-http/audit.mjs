// The GraphQL-over-HTTP audit (npm `graphql-http`, its serverAudits) against a running
// Pingyi. Usage: node audit.mjs URL [TOKEN]; prints one JSON array of results
// ({id, name, status: ok | warn | error | notice, reason}) on stdout.
// Run by tests/e2e/test_graphql_http_audit.py (which installs the package here first,
// see package.json) and so by .ci/run; node_modules is not committed.
import { serverAudits } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.mjs URL [TOKEN]');
  process.exit(2);
}

// Every request carries the bearer token: /graphql answers nobody without one.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = [];
for (const { fn } of serverAudits({ url, fetchFn })) {
  const { id, name, status, reason } = await fn();
  results.push({ id, name, status, reason: reason ?? null });
}
process.stdout.write(JSON.stringify(results));
