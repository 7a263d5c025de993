// Bundles the CLI. Node built-ins stay external; everything else is inlined.
//
// Two files in dist/, because start-up time is mostly spent compiling and initialising the
// bundle (see bench/README.md):
// - agent-auth.cjs: the whole CLI as one minified CommonJS script (agent-auth.cjs.map beside
//   it). Code most commands do not need (the demo's embedded server, the browser launcher's
//   `open`) sits behind dynamic import(), which esbuild turns into modules initialised only
//   when first imported, inside this one file.
// - agent-auth.mjs: the entry point (`bin`, README, tests). A small launcher that compiles
//   agent-auth.cjs with V8's code cache, so later runs skip parsing and compiling it. The
//   cache is written after the first run (and whenever it is missing, stale or rejected);
//   any problem with it only means compiling from source, as a plain bundle would.
import { build } from "esbuild"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

/**
 * dist/agent-auth.mjs. Where the cache lives: dist/.code-cache/ when the user can write
 * there, else $XDG_CACHE_HOME/agent-auth/code-cache (~/.cache/…), created 0700. A cache
 * file is used only when it is a regular file owned by this user or by the bundle's owner
 * and writable by nobody else (it becomes code that runs as this user). Its name carries
 * what it depends on (bundle size, mtime and inode; Node version and arch), so a new
 * bundle or Node never meets an old cache; V8 checks its own version and flags again.
 * AGENT_AUTH_CODE_CACHE=0 turns it off.
 */
const launcher = `#!/usr/bin/env node
// agent-auth: runs agent-auth.cjs (the CLI) with V8's code cache. See packages/cli/build.mjs.
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Script } from "node:vm"

const url = import.meta.url
const dir = path.dirname(fileURLToPath(url))
const bundle = path.join(dir, "agent-auth.cjs")
const source = fs.readFileSync(bundle, "latin1")
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
const module = { exports: {} }
script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, dir, url)
`

/**
 * @effect/cli imports yaml, toml and ini at its top level only to parse option files
 * (`Options.fileParse`), which agent-auth does not use: each becomes a stub whose `parse`
 * loads the real package on first use, so a start-up does not initialise them.
 */
const lazyFileParsers = {
  name: "lazy-file-parsers",
  setup(b) {
    b.onResolve({ filter: /^(yaml|toml|ini)$/ }, (args) =>
      /[\\/]@effect[\\/]cli[\\/]dist[\\/]/.test(args.importer)
        ? { path: args.path, namespace: "lazy-parser", pluginData: { resolveDir: args.resolveDir } }
        : undefined)
    b.onLoad({ filter: /.*/, namespace: "lazy-parser" }, (args) => ({
      contents: `export const parse = (text) => require(${JSON.stringify(args.path)}).parse(text)`,
      resolveDir: args.pluginData.resolveDir,
      loader: "js"
    }))
  }
}

const here = fileURLToPath(new URL(".", import.meta.url))
const dist = `${here}dist/`

await build({
  entryPoints: [`${here}src/main.ts`],
  outfile: `${dist}agent-auth.cjs`,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  // Fully minified: less to read and to deserialise at every start. Stack traces point into
  // agent-auth.cjs; the source map beside it turns those positions back into source lines.
  minify: true,
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
  // The launcher passes its own URL: code that locates itself (the demo tour re-running
  // this CLI, `open`) finds the entry point, as it would in an ES module bundle.
  define: { "import.meta.url": "__agentAuthUrl" },
  plugins: [lazyFileParsers]
})

// The launcher reads the bundle as latin1 (faster than UTF-8, and the same text when it is ASCII).
const bundle = readFileSync(`${dist}agent-auth.cjs`)
if (bundle.some((byte) => byte > 0x7f)) throw new Error("dist/agent-auth.cjs is not pure ASCII")

// A new bundle makes every cached compilation stale.
rmSync(`${dist}.code-cache`, { recursive: true, force: true })
writeFileSync(`${dist}agent-auth.mjs`, launcher, { mode: 0o755 })
