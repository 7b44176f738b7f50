// Bundles azkeep with esbuild: ESM, code splitting, so lazily imported commands become chunks
// and `get-access-token` loads only what it needs.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
// `azkeep --version` names the build: the commit (with `-dirty` for uncommitted changes) and date.
const git = (args) => spawnSync("git", args, { encoding: "utf8" });
const commit = git(["rev-parse", "--short=12", "HEAD"]).stdout?.trim();
const dirty = commit && git(["status", "--porcelain", "--untracked-files=no"]).stdout?.trim() ? "-dirty" : "";
const buildId = `${commit ? commit + dirty : "unknown commit"} ${new Date().toISOString().slice(0, 10)}`;

const entryPoints = {
  "cli/main": "src/cli/main.ts",
  "lib/index": "src/lib/index.ts",
  "lib/emulator": "src/emulator/index.ts",
  // The agent's two processes (src/agent/server.ts): the front and the vault.
  "agent/daemon": "src/agent/daemon.ts",
  "agent/vault": "src/agent/vault.ts",
  // The release log's own thread (src/agent/log-thread.ts).
  "agent/log-thread": "src/agent/log-thread.ts",
};
// Hashed chunks of earlier builds are never loaded again; start from an empty dist/.
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
// The hot paths (`account get-access-token` through bin's fast lane, and the `az` shim) are a
// build of their own: without commander or any command but theirs, one file each, so a cached
// token costs one module load, not dozens (measured in docs/benchmarks.md). npm dependencies
// stay external there (loaded from node_modules only on the rare paths that need them).
// `cli/agent-lane` and `shim/agent-lane` are the smallest: a cached token from a running agent
// (src/cli/agent-lane.ts, src/shim/agent-lane.ts).
const fastEntryPoints = {
  "shim/az": "src/shim/az.ts",
  "shim/agent-lane": "src/shim/agent-lane.ts",
  "cli/fast": "src/shim/cli-fast.ts",
  "cli/agent-lane": "src/cli/agent-lane.ts",
  // `-o yaml`'s emitter: a file of its own, loaded by the others only when yaml is asked for.
  "cli/pyyaml": "src/cli/output/pyyaml.ts",
};
const codeCaches = [
  "dist/cli/fast.v8cache",
  "dist/shim/az.v8cache",
  "dist/cli/agent-lane.v8cache",
  "dist/shim/agent-lane.v8cache",
];

const common = {
  outdir: "dist",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: false,
  minify: false,
  legalComments: "none",
  chunkNames: "chunks/[name]-[hash]",
  // Native addon: loaded from node_modules at run time.
  external: ["@napi-rs/keyring", "playwright-core", "oidc-provider", "koffi"],
  define: { __AZKEEP_VERSION__: JSON.stringify(pkg.version), __AZKEEP_BUILD__: JSON.stringify(buildId) },
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __azkeepCreateRequire } from 'node:module'; const require = __azkeepCreateRequire(import.meta.url);",
  },
  logLevel: "warning",
};

await build({ ...common, entryPoints, splitting: true });

// `node:fs/promises` costs ~1 ms to load (it pulls in readline and the file watchers), and
// `node:os` ~0.5 ms, while the cached-token paths only read files synchronously and need the
// home folder only when HOME is unset: in the fast builds each becomes a module of wrappers that
// load it on first call.
const LAZY_BUILTINS = {
  "fs/promises": {
    load: 'require("node:fs").promises',
    names: Object.keys(await import("node:fs/promises")),
  },
  os: { load: 'require("node:os")', names: Object.keys(await import("node:os")) },
};
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(b) {
    // The wrappers' own require of the module is the real one.
    b.onResolve({ filter: /^(node:)?(fs\/promises|os)$/ }, (args) =>
      args.namespace === "azkeep-lazy"
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ""), namespace: "azkeep-lazy" },
    );
    b.onLoad({ filter: /.*/, namespace: "azkeep-lazy" }, async (args) => {
      const { load, names } = LAZY_BUILTINS[args.path];
      const real = await import(`node:${args.path}`);
      const lines = names
        .filter((n) => n !== "default")
        .map((n) =>
          typeof real[n] === "function"
            ? `export const ${n} = (...a) => ${load}.${n}(...a);`
            : `export const ${n} = /* @__PURE__ */ (() => ${load}.${n})();`,
        );
      return { contents: lines.join("\n"), loader: "js" };
    });
  },
};

// A code cache (see shim/code-cache.cjs) needs a bundle without `import()`: the dynamic imports
// of npm packages (all CommonJS-capable) become `require` there.
const externalsByRequire = {
  name: "externals-by-require",
  setup(b) {
    b.onResolve({ filter: /^[@a-z]/ }, (args) =>
      args.kind === "dynamic-import" ? { path: args.path, namespace: "azkeep-require" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "azkeep-require" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

// The yaml emitter stays out of the hot-path bundles: their `import("./pyyaml.js")` requires
// dist/cli/pyyaml.cjs (by absolute path: their `require` is the loader's, shim/code-cache.cjs).
const lazyYamlEmitter = {
  name: "lazy-yaml-emitter",
  setup(b) {
    b.onResolve({ filter: /\/pyyaml\.js$/ }, (args) =>
      args.kind === "dynamic-import" ? { path: "pyyaml", namespace: "azkeep-pyyaml" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "azkeep-pyyaml" }, () => ({
      contents: 'module.exports = require(require("node:path").join(__dirname, "..", "cli", "pyyaml.cjs"));',
      loader: "js",
    }));
  },
};

for (const f of codeCaches) rmSync(f, { force: true });
await build({
  ...common,
  entryPoints: fastEntryPoints,
  // CommonJS, one file each: no chain of ES module loads, and the Node built-ins that only
  // the cold paths use (refresh flows, key providers, the pass-through to az) are required
  // lazily inside them instead of being hoisted to the top as ESM imports would be.
  format: "cjs",
  splitting: false,
  outExtension: { ".js": ".cjs" },
  // import.meta.url is made on first use: pathToFileURL costs ~0.5 ms, and the agent lane,
  // which never asks for it, is measured in single milliseconds.
  define: { ...common.define, "import.meta.url": "__azkeepImportMeta.url" },
  banner: {
    js: 'const __azkeepImportMeta = { get url() { return require("node:url").pathToFileURL(__filename).href; } };',
  },
  external: [...common.external, ...Object.keys(pkg.dependencies ?? {})],
  plugins: [lazyYamlEmitter, lazyBuiltins, externalsByRequire],
});

// Train the hot-path bundles' V8 code caches (a failure only costs speed).
const train = spawnSync(process.execPath, ["shim/code-cache.cjs", "--train"], {
  stdio: ["ignore", "ignore", "inherit"],
});
if (train.status !== 0) for (const f of codeCaches) rmSync(f, { force: true });
