// Loads azkeep's hot-path bundles (dist/cli/agent-lane.cjs, dist/cli/fast.cjs,
// dist/shim/agent-lane.cjs, dist/shim/az.cjs) with a V8 code cache made at build time, so a
// cached `get-access-token` skips parsing and compiling ~130 KB of JavaScript (about 3 ms of a
// ~25 ms process; docs/benchmarks.md).
//
// The cache files sit next to the bundles in dist/ and are written only by `npm run build`
// (never at run time, never in a user-writable place: a code cache is code). V8 checks each
// against its source, its own version and flags, and silently compiles from source when it
// does not match (another Node version, NODE_OPTIONS flags, an edited bundle).
//
// `node shim/code-cache.cjs --train` (run by scripts/build.mjs) makes the caches: it signs in a
// throwaway store, runs each bundle's cached-token path once, and saves what V8 compiled.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

function cacheFileOf(file) {
  return file.replace(/\.cjs$/, ".v8cache");
}

/**
 * A file's bytes, read without readFileSync's Buffer path (a dozen functions of Node's fs and
 * buffer modules that a short process compiles for one read: ~0.5 M instructions,
 * docs/benchmarks.md). bin/azkeep.js and shim/az repeat it (test/shim/path.test.ts).
 */
const readBytes = (file) => {
  const fd = fs.openSync(file, "r");
  try {
    let bytes = new Uint8Array(262144);
    let n = 0;
    for (let r; (r = fs.readSync(fd, bytes, n, bytes.length - n, null)) > 0;) {
      n += r;
      if (n === bytes.length) {
        const more = new Uint8Array(bytes.length * 2);
        more.set(bytes);
        bytes = more;
      }
    }
    return bytes.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
};

/** Loads a CommonJS bundle like `require`, with its code cache when it has one. */
function load(file, options = {}) {
  let cachedData;
  if (!options.noCache) {
    try {
      cachedData = readBytes(cacheFileOf(file));
    } catch {
      cachedData = undefined;
    }
  }
  const source = fs.readFileSync(file, "utf8");
  // Module.wrap's wrapper, without loading node:module (which pulls in the ES module loader).
  // bin/azkeep.js and shim/az repeat this line: V8 accepts the cache only for the same text.
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${source}\n});`;
  const script = new vm.Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const mod = { exports: {}, filename: file, id: file, loaded: false };
  // This file's own require: the bundles sit beside it in the same package, so Node built-ins
  // and npm dependencies resolve the same from here.
  script.runInThisContext().call(mod.exports, mod.exports, require, mod, file, path.dirname(file));
  mod.loaded = true;
  if (options.script) options.script.current = script;
  return mod.exports;
}

module.exports = { load, cacheFileOf, readBytes };

async function train() {
  const os = require("node:os");
  const repo = path.resolve(__dirname, "..");
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "azkeep-v8cache-"));
  const env = {
    ...process.env,
    HOME: root,
    AZKEEP_CONFIG_DIR: path.join(root, "config"),
    XDG_RUNTIME_DIR: path.join(root, "run"),
    AZKEEP_STORE_PROVIDER: "insecure-file",
  };
  delete env.HTTPS_PROXY;
  delete env.https_proxy;
  try {
    // A signed-in store with a fresh token, written through azkeep's own store code.
    const lib = await import(
      require("node:url").pathToFileURL(path.join(repo, "dist", "lib", "index.js")).href
    );
    const ctx = lib.createNodeContext({ env, onlyShowErrors: true });
    const deps = await lib.openTokenDeps(ctx);
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const token = `${b64({ alg: "none" })}.${b64({ aud: "training" })}.x`;
    await deps.store.update((s) => {
      s.profile.subscriptions = [
        {
          id: "00000000-0000-0000-0000-000000000001",
          name: "Training",
          state: "Enabled",
          user: { name: "training@example.com", type: "user" },
          isDefault: true,
          tenantId: "00000000-0000-0000-0000-000000000002",
          environmentName: "AzureCloud",
        },
      ];
      s.secrets.refreshTokens = [
        {
          homeAccountId: "u.t",
          username: "training@example.com",
          clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
          environment: "login.microsoftonline.com",
          cloud: "AzureCloud",
          homeTenantId: "00000000-0000-0000-0000-000000000002",
          secret: "training",
          lastModified: now,
        },
      ];
      s.secrets.accessTokens = [
        {
          homeAccountId: "u.t",
          principal: "training@example.com",
          clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
          environment: "login.microsoftonline.com",
          cloud: "AzureCloud",
          tenantId: "00000000-0000-0000-0000-000000000002",
          target: "https://management.core.windows.net//.default",
          secret: token,
          tokenType: "Bearer",
          expiresOn: now + 3600,
          cachedAt: now,
        },
      ];
    });
    // Run each bundle's hot path with the environment above, output discarded.
    Object.assign(process.env, env);
    const write = process.stdout.write;
    process.stdout.write = (_chunk, _enc, cb) => {
      if (typeof _enc === "function") _enc();
      else if (typeof cb === "function") cb();
      return true;
    };
    // The agent lane answers from an agent only: a stand-in speaks the protocol for it.
    const agent = await fakeAgent(lib, env, token, now);
    try {
      for (const [bundle, run] of [
        [
          path.join(repo, "dist", "cli", "agent-lane.cjs"),
          // The forms people and scripts run: as it is, and `TOKEN=$(… --query accessToken -o
          // tsv)`. A function no training run called is compiled from source by every process
          // that needs it (~1.2 M instructions for the query form's, docs/benchmarks.md).
          async (m) => {
            for (const argv of [
              ["account", "get-access-token", "--only-show-errors"],
              ["account", "get-access-token", "--query", "accessToken", "-o", "tsv"],
              ["account", "get-access-token", "-o", "tsv"],
            ]) {
              const code = await m.main(argv, () => {
                throw new Error("the agent lane did not reach the training agent");
              });
              if (code !== 0) return code;
            }
            return 0;
          },
        ],
        [
          path.join(repo, "dist", "shim", "agent-lane.cjs"),
          // As Terraform, Pulumi and the SDKs ask. The stand-in goes away after this run: the
          // others train their own paths.
          (m) =>
            m
              .main(
                [
                  "account",
                  "get-access-token",
                  "--resource",
                  "https://management.core.windows.net/",
                  "-o",
                  "json",
                ],
                () => {
                  throw new Error("the shim's agent lane did not reach the training agent");
                },
              )
              .finally(() => agent.close()),
        ],
        [
          path.join(repo, "dist", "cli", "fast.cjs"),
          (m) => m.main(["account", "get-access-token", "--only-show-errors"], () => null),
        ],
        [
          path.join(repo, "dist", "shim", "az.cjs"),
          (m) => m.main(["account", "get-access-token"], path.join(repo, "shim", "az")),
        ],
      ]) {
        const holder = {};
        const m = load(bundle, { noCache: true, script: holder });
        const code = await run(m);
        if (code !== 0) throw new Error(`${path.basename(bundle)} exited ${code} in training`);
        fs.writeFileSync(cacheFileOf(bundle), holder.current.createCachedData());
      }
    } finally {
      process.stdout.write = write;
      agent.close();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/**
 * A stand-in agent on the training store's socket: answers `hello` and `token` as the agent's
 * protocol says (src/agent/protocol.ts), so the agent lane's path can be compiled and cached.
 */
async function fakeAgent(lib, env, token, now) {
  const net = require("node:net");
  const socketPath = lib.agentSocketPath(lib.resolvePaths(env), env);
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  const server = net.createServer((socket) => {
    let buf = "";
    socket.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        const result =
          msg.op === "hello"
            ? { version: lib.PROTOCOL_VERSION, pid: process.pid, azkeep: "training" }
            : {
                accessToken: token,
                tokenType: "Bearer",
                expiresOn: now + 3600,
                tenant: "00000000-0000-0000-0000-000000000002",
                subscription: "00000000-0000-0000-0000-000000000001",
                source: "cache",
              };
        socket.write(JSON.stringify({ id: msg.id, ok: true, result }) + "\n");
      }
    });
  });
  await new Promise((resolve, reject) => server.listen(socketPath, resolve).once("error", reject));
  return server;
}

if (require.main === module && process.argv[2] === "--train") {
  train().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(
        `code cache training failed (the bundles still work, without a cache): ${e.message}\n`,
      );
      process.exit(1);
    },
  );
}
