// Bundles the CLI. Node built-ins stay external (some loaded on first use); everything else
// is inlined.
//
// Start-up time is mostly spent compiling and initialising the bundle (see bench/README.md),
// so dist/ holds:
// - agent-auth.cjs: the whole CLI as one minified CommonJS script (agent-auth.cjs.map beside
//   it). Code most commands do not need (the demo's embedded server, the browser login's
//   loopback server and browser launcher, `open`) sits behind dynamic import(), which
//   esbuild turns into modules initialised only when first imported, inside this one file.
// - agent-auth-fast.cjs: `status` and `token` in their plain forms (src/fast.ts; which
//   command lines, src/internal/fastArgs.ts), without the command parser and without anything
//   only other commands use. It has no dynamic import(), so esbuild tree-shakes it to what those
//   two commands run (a dynamic import() makes esbuild wrap every module it reaches, and a
//   wrapped module keeps all of its exports).
//   Neither holds the SQL stores' drivers' native part (libsql): see `external` below.
// - agent-auth.mjs: the entry point (`bin`, README, tests). A small launcher that picks the
//   bundle for the command line and compiles it with V8's code cache, so later runs skip
//   parsing and compiling it. The cache is written after the first run (and whenever it is
//   missing, stale or rejected); any problem with it only means compiling from source, as a
//   plain bundle would.
import { build } from "esbuild"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

/**
 * dist/agent-auth.mjs. The bundle: agent-auth-fast.cjs for a command line `fastArgs`
 * accepts (its code is embedded here, so the choice loads nothing), else agent-auth.cjs;
 * agent-auth.cjs too when the small one is missing, or with AGENT_AUTH_FAST=0.
 *
 * Where the cache lives: dist/.code-cache/ when the user can write
 * there, else $XDG_CACHE_HOME/agent-auth/code-cache (~/.cache/…), created 0700. A cache
 * file is used only when it is a regular file owned by this user or by the bundle's owner
 * and writable by nobody else (it becomes code that runs as this user). Its name carries
 * what it depends on (bundle size, mtime and inode; Node version and arch), so a new
 * bundle or Node never meets an old cache; V8 checks its own version and flags again.
 * AGENT_AUTH_CODE_CACHE=0 turns it off. Each bundle has its own cache file.
 */
const launcher = (fastArgsScript) => `#!/usr/bin/env node
// agent-auth: runs agent-auth.cjs (the CLI), or agent-auth-fast.cjs (status, token), with V8's code cache. See packages/cli/build.mjs.
// Built-ins through process.getBuiltinModule (Node 20.16+) where there is one: as ES module
// imports they cost every start a few milliseconds more.
const getBuiltin = process.getBuiltinModule
const [fs, path, { fileURLToPath }, { Script }, moduleImported] = getBuiltin
  ? ["node:fs", "node:path", "node:url", "node:vm"].map((id) => getBuiltin(id))
  : await Promise.all(["node:fs", "node:path", "node:url", "node:vm", "node:module"].map((id) => import(id)))

const url = import.meta.url
const dir = path.dirname(fileURLToPath(url))
// internal/fastArgs.ts, as a script: which command lines the small bundle runs.
${fastArgsScript.trim()}

/** The bundle for this command line, and its text. */
const choose = () => {
  // The SQL stores (chosen in the environment only) are in the whole CLI alone.
  const sql = process.env.AGENT_AUTH_STORE === "postgres" || process.env.AGENT_AUTH_STORE === "sqlite"
  if (!sql && process.env.AGENT_AUTH_FAST !== "0" && agentAuthFastArgs.fastArgs(process.argv.slice(2)) !== undefined) {
    const fast = path.join(dir, "agent-auth-fast.cjs")
    try {
      return { bundle: fast, source: fs.readFileSync(fast, "latin1") }
    } catch {
      // Not there: the whole CLI runs every command.
    }
  }
  const full = path.join(dir, "agent-auth.cjs")
  return { bundle: full, source: fs.readFileSync(full, "latin1") }
}
const { bundle, source } = choose()
// The wrapper has a line of its own, and lineOffset -1 takes it back out: stack traces give
// positions in agent-auth.cjs itself, which agent-auth.cjs.map maps to the sources.
const wrapper = "(function (exports, require, module, __filename, __dirname, __agentAuthUrl) {\\n" + source + "\\n})"

/** FNV-1a, enough to name a cache file (V8 validates the contents itself). */
const hash = (text) => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0
  return h.toString(36)
}

const uid = typeof process.getuid === "function" ? process.getuid() : -1

/** The cache file for this bundle and this Node, or undefined when caching is off or impossible. */
const locate = () => {
  // On Windows, modes say nothing about who may write a file: no cache there.
  if (process.env.AGENT_AUTH_CODE_CACHE === "0" || process.platform === "win32") return undefined
  const st = fs.statSync(bundle)
  // V8 itself rejects data made under other V8 flags (then it is rewritten).
  const key = hash([process.version, process.arch, st.size, st.mtimeMs, st.ino].join("|"))
  let folder = path.join(dir, ".code-cache")
  try {
    fs.accessSync(dir, fs.constants.W_OK)
  } catch {
    const base = process.env.XDG_CACHE_HOME || (process.env.HOME ? path.join(process.env.HOME, ".cache") : undefined)
    if (base === undefined) return undefined
    folder = path.join(base, "agent-auth", "code-cache")
  }
  return { folder, file: path.join(folder, hash(bundle) + "-" + key + ".bin"), owner: st.uid, prefix: hash(bundle) + "-" }
}

/** The cached data, when the file is there and safe to run. */
const read = (where) => {
  try {
    const st = fs.lstatSync(where.file)
    if (!st.isFile() || (st.uid !== uid && st.uid !== where.owner) || (st.mode & 0o022) !== 0) return undefined
    return fs.readFileSync(where.file)
  } catch {
    return undefined
  }
}

/** Writes the cache at exit (it then holds the functions this run compiled); best effort, atomic. */
const write = (where, script) => {
  try {
    const data = script.createCachedData()
    fs.mkdirSync(where.folder, { recursive: true, mode: 0o700 })
    const temp = where.file + "." + process.pid + ".tmp"
    fs.writeFileSync(temp, data, { mode: 0o600, flag: "wx" })
    fs.renameSync(temp, where.file)
    // Caches of earlier bundles or Node versions are dead weight.
    for (const name of fs.readdirSync(where.folder)) {
      if (name.startsWith(where.prefix) && name.endsWith(".bin") && path.join(where.folder, name) !== where.file) {
        fs.rmSync(path.join(where.folder, name), { force: true })
      }
    }
  } catch {
    // No cache this time: the next run compiles from source again.
  }
}

let where
try {
  where = locate()
} catch {
  where = undefined
}
const cachedData = where === undefined ? undefined : read(where)
const script = new Script(wrapper, { filename: bundle, lineOffset: -1, ...(cachedData === undefined ? {} : { cachedData }) })
if (where !== undefined && (cachedData === undefined || script.cachedDataRejected)) {
  process.once("exit", () => write(where, script))
}
// The bundles require Node's built-ins (and the SQLite driver's native part, from the
// CLI's node_modules): node:module only for what is not a built-in.
let requireFromBundle
const require = (id) =>
  getBuiltin?.(id) ?? (requireFromBundle ??= (moduleImported ?? getBuiltin("node:module")).createRequire(bundle))(id)
const module = { exports: {} }
script.runInThisContext().call(module.exports, module.exports, require, module, bundle, dir, url)
`

/**
 * Named imports from the barrels of effect, @effect/platform, @agent-auth/core
 * and @agent-auth/node, in the workspace's sources, become imports of the modules that
 * define them (`import { Effect, Schema } from "effect"` → `import * as Effect from
 * "effect/Effect"; import * as Schema from "effect/Schema"`). In a bundle with dynamic
 * import() esbuild wraps the modules, and a wrapped barrel initialises every module it
 * re-exports: the whole of effect (fast-check included), and @effect/platform's HTTP server,
 * router, multipart and MsgPack (which probes for a native add-on at load). A statement
 * naming anything a barrel does not re-export plainly is left as written.
 */
const directImports = (root) => {
  const require = createRequire(`${root}packages/cli/package.json`)
  const barrels = new Map()
  const scan = (text, where) => {
    const names = new Map()
    for (const m of text.matchAll(/export \* as (\w+) from "\.\/(\w+)\.js"/g)) names.set(m[1], { from: where(m[2]), namespace: true })
    for (const m of text.matchAll(/export \{([^}]*)\} from "\.\/(\w+)\.js"/g)) {
      for (const name of m[1].split(",").map((n) => n.trim()).filter(Boolean)) names.set(name, { from: where(m[2]), namespace: false })
    }
    const stars = [...text.matchAll(/export \* from "\.\/(\w+)\.js"/g)].map((m) => where(m[1]))
    return { names, star: stars.length === 1 ? stars[0] : undefined }
  }
  for (const pkg of ["effect", "@effect/platform"]) {
    const index = require.resolve(pkg).replace(/dist[\\/]cjs[\\/]index\.js$/, "dist/esm/index.js")
    barrels.set(pkg, scan(readFileSync(index, "utf8"), (file) => `${pkg}/${file}`))
  }
  for (const [pkg, dir] of [["@agent-auth/core", "core"], ["@agent-auth/node", "node"]]) {
    const src = `${root}packages/${dir}/src/`
    barrels.set(pkg, scan(readFileSync(`${src}index.ts`, "utf8"), (file) => `${src}${file}.ts`))
  }
  const statement = new RegExp(`import\\s*\\{([^}]*)\\}\\s*from\\s*"(${[...barrels.keys()].join("|")})"`, "g")
  const rewrite = (source) =>
    source.replace(statement, (whole, list, pkg) => {
      const { names, star } = barrels.get(pkg)
      const out = []
      for (const item of list.split(",").map((i) => i.trim()).filter(Boolean)) {
        if (item.startsWith("type ")) continue
        const [name, local = name] = item.split(/\s+as\s+/)
        const found = names.get(name) ?? (star === undefined ? undefined : { from: star, namespace: false })
        if (found === undefined) return whole
        const from = JSON.stringify(found.from)
        out.push(found.namespace ? `import * as ${local} from ${from}` : `import { ${name} as ${local} } from ${from}`)
      }
      return out.join("; ")
    })
  return {
    name: "direct-imports",
    setup(b) {
      b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]src[\\/].*\.ts$/ }, (args) => ({
        contents: rewrite(readFileSync(args.path, "utf8")),
        loader: "ts"
      }))
    }
  }
}

/**
 * The workspace's modules do no work when imported (nothing at their top level but
 * declarations), which esbuild cannot see for itself in a package without a `sideEffects`
 * field: so it is told, and leaves out every module a bundle imports but never uses. The
 * small bundle then holds no login code, though NodeAuth.ts imports it for its `layer`.
 */
const sideEffectFreeWorkspace = (root) => ({
  name: "side-effect-free-workspace",
  setup(b) {
    const source = /[\\/]packages[\\/][^\\/]+[\\/]src[\\/]/
    b.onResolve({ filter: /^(\.|\/|@agent-auth\/)/ }, async (args) => {
      if (args.pluginData === "side-effect-free-workspace" || !source.test(args.importer)) return undefined
      const resolved = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: "side-effect-free-workspace"
      })
      return resolved.errors.length === 0 && source.test(resolved.path) ? { ...resolved, sideEffects: false } : resolved
    })
  }
})

/**
 * Built-ins that load many of Node's own modules, imported at the top level of modules that
 * most runs never call them from: node:crypto (some twenty modules; @effect/platform-node's
 * file system, for temporary file names), node:fs/promises (the file store), and in the
 * whole CLI node:child_process (the demo tour, `open`) and node:readline (prompts). An
 * import of one gets an object whose properties (the names the module has on the Node
 * running this build) load it on first use: `crypto.x` is still the real `x`.
 */
const LAZY_BUILTINS = ["node:crypto", "node:fs/promises", "node:child_process", "node:readline"]
const lazyBuiltins = (ids) => ({
  name: "lazy-builtins",
  setup(b) {
    const filter = new RegExp(`^(${ids.join("|")})$`)
    b.onResolve({ filter }, (args) =>
      args.namespace === "lazy-builtin" ? { path: args.path, external: true } : { path: args.path, namespace: "lazy-builtin" })
    b.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => {
      const id = JSON.stringify(args.path)
      const properties = Object.keys(createRequire(import.meta.url)(args.path))
        .map((name) => `${JSON.stringify(name)}: { enumerable: true, get: () => load()[${JSON.stringify(name)}] }`)
      return {
        contents: `let real\nconst load = () => (real ??= require(${id}))\nmodule.exports = Object.defineProperties({}, {\n${properties.join(",\n")}\n})\n`,
        loader: "js"
      }
    })
  }
})

const here = fileURLToPath(new URL(".", import.meta.url))
const root = fileURLToPath(new URL("../../", import.meta.url))
const dist = `${here}dist/`

const bundleCli = (entry, outfile) =>
  build({
    entryPoints: [`${here}src/${entry}`],
    outfile: `${dist}${outfile}`,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    // Fully minified: less to read and to deserialise at every start. Stack traces point into
    // the bundle; the source map beside it turns those positions back into source lines.
    minify: true,
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
    // The launcher passes its own URL: code that locates itself (the demo tour re-running
    // this CLI, `open`) finds the entry point, as it would in an ES module bundle.
    define: { "import.meta.url": "__agentAuthUrl" },
    // libsql (the SQLite store's driver) loads a native binding chosen at run time, which no
    // bundle can hold: it is required from the CLI's node_modules, and only when
    // AGENT_AUTH_STORE=sqlite runs (its importer, @agent-auth/sql, sits behind import()).
    // pg's optional native driver is never used.
    external: ["libsql", "pg-native"],
    plugins: [directImports(root), sideEffectFreeWorkspace(root), lazyBuiltins(LAZY_BUILTINS)]
  })

const [, fast] = await Promise.all([bundleCli("main.ts", "agent-auth.cjs"), bundleCli("fast.ts", "agent-auth-fast.cjs")])

// The small bundle stays small: nothing of the other commands, and no dynamic import()
// (which would make esbuild wrap, and keep whole, every module it reaches).
const inFast = Object.entries(Object.values(fast.metafile.outputs).find((o) => o.entryPoint !== undefined).inputs)
  .filter(([, input]) => input.bytesInOutput > 0)
  .map(([file]) => file)
const unwanted = inFast.filter((file) =>
  /node_modules[\\/](@effect[\\/]sql|@libsql|pg|open)[\\/]|packages[\\/](testing|sql|cli[\\/]src[\\/]commands)[\\/]|Node(CallbackServer|BrowserLauncher)\.ts$|(PkceFlow|DeviceFlow|Revoker)\.ts$/
    .test(file)
)
const dynamic = inFast.flatMap((file) =>
  fast.metafile.inputs[file].imports.filter((i) => i.kind === "dynamic-import").map((i) => `${file} → ${i.path}`)
)
if (unwanted.length > 0 || dynamic.length > 0) {
  throw new Error(`dist/agent-auth-fast.cjs must hold only status and token:\n  ${[...unwanted, ...dynamic].join("\n  ")}`)
}

// The launcher reads the bundles as latin1 (faster than UTF-8, and the same text when it is ASCII).
for (const file of ["agent-auth.cjs", "agent-auth-fast.cjs"]) {
  if (readFileSync(`${dist}${file}`).some((byte) => byte > 0x7f)) throw new Error(`dist/${file} is not pure ASCII`)
}

// fastArgs, for the launcher: a script defining `agentAuthFastArgs`, no imports.
const fastArgsScript = await build({
  entryPoints: [`${here}src/internal/fastArgs.ts`],
  bundle: true,
  platform: "node",
  target: "node20",
  format: "iife",
  globalName: "agentAuthFastArgs",
  minify: true,
  write: false,
  logLevel: "warning"
})

// A new bundle makes every cached compilation stale.
rmSync(`${dist}.code-cache`, { recursive: true, force: true })
writeFileSync(`${dist}agent-auth.mjs`, launcher(fastArgsScript.outputFiles[0].text.replace(/^"use strict";/, "")), { mode: 0o755 })

// dist/index.mjs: the commands as a library (`run(["status"])` inside a runtime's process,
// src/index.ts), one ES module holding what it needs; import.meta.url is its own here.
await build({
  entryPoints: [`${here}src/index.ts`],
  outfile: `${dist}index.mjs`,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  minify: true,
  logLevel: "warning",
  // Native parts load from node_modules (optionalDependencies), as in the CLI's bundle.
  external: ["libsql", "pg-native", "@napi-rs/keyring"],
  banner: { js: "import { createRequire as __agentAuthRequire } from 'node:module'; const require = __agentAuthRequire(import.meta.url);" }
})
writeFileSync(
  `${dist}index.d.ts`,
  `/** Runs \`agent-auth ARGV…\` in this process, on its console; resolves with the exit code (0 ok, 1 authentication needed, 2 usage, 3 provider, 4 store, 130 cancelled). One command line at a time. */\nexport declare const run: (argv: ReadonlyArray<string>) => Promise<number>\n`
)
