/**
 * `pnpm bench`: every figure as a ratio measured in this run, one line each
 * (`name: ours / baseline = ratio`), and all of it in bench/results.json.
 *
 *   node bench/run.mjs [resolve|storm|jwt|mcp|cli|sql ...]   only those parts
 *   BENCH_QUICK=1 node bench/run.mjs                 fewer rounds (a smoke run)
 *
 * See bench/README.md for what each figure measures and how.
 */
import { build } from "esbuild"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { cliFigures } from "./lib/cli.mjs"
import { line } from "./lib/stats.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(here)
const quick = process.env.BENCH_QUICK === "1"
const wanted = process.argv.slice(2)
const want = (part) => wanted.length === 0 || wanted.includes(part)

// The TypeScript benches, bundled the way the CLI is (workspace sources, no build step).
await build({
  entryPoints: [path.join(here, "src/hot.ts"), path.join(here, "src/seed.ts"), path.join(here, "src/mcp.ts")],
  outdir: path.join(here, "dist"),
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  logLevel: "warning",
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
})

const figures = []
const report = (figure) => {
  figures.push(figure)
  console.log(line(figure))
}

const loadavg = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")
console.log(`agent-auth bench: node ${process.version}, ${os.cpus().length} cores (nproc ${nproc()}), load ${loadavg()}${quick ? ", quick" : ""}`)

function nproc() {
  try {
    return execFileSync("nproc", { encoding: "utf8" }).trim()
  } catch {
    return "?"
  }
}

/** Runs the in-process bench for some parts; each JSON line it prints is a figure. */
const hot = (parts, script = "dist/hot.mjs") => child(process.execPath, ["--expose-gc", path.join(here, script), ...parts])

/** Runs a bench process; each JSON line it prints is a figure. */
const child = (command, args) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, NODE_ENV: "production" }
    })
    let buffer = ""
    child.stdout.on("data", (d) => {
      buffer += d
      let nl
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        if (text.trim() !== "") report(JSON.parse(text))
      }
    })
    child.once("error", reject)
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`${args.at(-1)} exited ${code}`))))
  })

const parts = ["resolve", "storm", "jwt"].filter(want)
if (parts.length > 0) await hot(parts)

if (want("sql")) {
  // CommonJS, so the SQLite driver's native part (libsql, which no bundle can hold) is a
  // require of the CLI's own copy, made where it is used.
  const libsql = createRequire(path.join(root, "packages/cli/package.json")).resolve("libsql")
  await build({
    entryPoints: [path.join(here, "src/sql.ts")],
    outfile: path.join(here, "dist/sql.cjs"),
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    logLevel: "warning",
    external: ["pg-native"],
    plugins: [{ name: "libsql", setup: (b) => b.onResolve({ filter: /^libsql$/ }, () => ({ path: libsql, external: true })) }]
  })
  // Inside a throwaway Postgres (scripts/with-postgres.sh; it passes through when one is given).
  await child(path.join(root, "scripts/with-postgres.sh"), [process.execPath, "--expose-gc", path.join(here, "dist/sql.cjs")])
}
// MCP servers: discovery per process (count), and McpAuth.fetch against a fixed header.
if (want("mcp")) await hot([], "dist/mcp.mjs")

if (want("cli")) {
  // The bundle as shipped.
  execFileSync(process.execPath, [path.join(root, "packages/cli/build.mjs")], { stdio: "inherit" })
  const seed = async (home) => execFileSync(process.execPath, [path.join(here, "dist/seed.mjs"), home], { encoding: "utf8" }).trim()
  for (const figure of await cliFigures({ root, runs: quick ? 5 : 15, seed })) report(figure)
}

const results = {
  date: new Date().toISOString(),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  loadAverageAtEnd: os.loadavg(),
  quick,
  figures
}
fs.writeFileSync(path.join(here, "results.json"), JSON.stringify(results, null, 2) + "\n")
const missed = figures.filter((f) => f.target !== undefined && !f.informational && !f.met)
console.log(`load at end ${loadavg()}; ${figures.length} figures, ${missed.length} target(s) missed; written to bench/results.json`)
