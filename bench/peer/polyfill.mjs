// PostGraphile 5 (grafast, grafserv, @dataplan/pg) declares node >= 22. On Node 20 the
// one missing API it calls is Promise.withResolvers (Node 22; ES2024). Imported first by
// server.mjs, so it is in place before any PostGraphile module is evaluated.
if (typeof Promise.withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
  globalThis.__pingyiWithResolversPolyfilled = true;
}
