/**
 * The CLI figures: cold start of `agent-auth status` (empty home) and `agent-auth token
 * openai` (a stored, valid ChatGPT login) against `node -e 0`, and the peak RSS of
 * `status` against `node -e 0`. Each run is a new process; the sides alternate within
 * every round, so load from other processes falls on all of them alike; medians.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { median } from "./stats.mjs"

/** One process to completion: wall milliseconds, exit code, output. */
const run = (args, env) =>
  new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    let ms = 0
    child.once("error", reject)
    // The time is taken when the process ends; the output is complete only once the pipes close.
    child.once("exit", () => (ms = Number(process.hrtime.bigint() - t0) / 1e6))
    child.once("close", (code) => resolve({ ms, code, stdout, stderr }))
  })

/** An environment without anything that would change what the CLI does. */
const cleanEnv = (home) => {
  const env = { ...process.env, AGENT_AUTH_HOME: home, AGENT_AUTH_STORE: "file", NO_COLOR: "1" }
  for (const k of Object.keys(env)) {
    if (/_API_KEY$/.test(k) || k === "AGENT_AUTH_LOG" || k === "NODE_OPTIONS") delete env[k]
  }
  return env
}

/**
 * @param {{ root: string, runs: number, seed: (home: string) => Promise<string> }} options
 */
export const cliFigures = async ({ root, runs, seed }) => {
  const cli = path.join(root, "packages/cli/dist/agent-auth.mjs")
  const emptyHome = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-bench-empty-"))
  const tokenHome = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-bench-token-"))
  try {
    const accessToken = await seed(tokenHome)
    const sides = {
      node: { args: ["-e", "0"], env: cleanEnv(emptyHome), expect: 0 },
      status: { args: [cli, "status"], env: cleanEnv(emptyHome), expect: 1 },
      token: { args: [cli, "token", "openai"], env: cleanEnv(tokenHome), expect: 0, stdout: `${accessToken}\n` },
      // The default store, `auto`, with the login in credentials.json: it must not start the keychain helper.
      tokenAuto: {
        args: [cli, "token", "openai"],
        env: { ...cleanEnv(tokenHome), AGENT_AUTH_STORE: "auto" },
        expect: 0,
        stdout: `${accessToken}\n`
      }
    }
    const check = (name, r) => {
      const side = sides[name]
      if (r.code !== side.expect || (side.stdout !== undefined && r.stdout !== side.stdout)) {
        throw new Error(`\`${side.args.join(" ")}\` exited ${r.code} (expected ${side.expect}); stderr: ${r.stderr.slice(0, 500)}`)
      }
    }
    // Warm-up: the file cache, and whatever the CLI prepares on its first run.
    for (let i = 0; i < 2; i++) for (const name of Object.keys(sides)) check(name, await run(sides[name].args, sides[name].env))

    const times = { node: [], status: [], token: [], tokenAuto: [] }
    const names = Object.keys(sides)
    for (let r = 0; r < runs; r++) {
      // Rotate the order each round so no side always runs first.
      const order = names.map((_, i) => names[(i + r) % names.length])
      for (const name of order) {
        const result = await run(sides[name].args, sides[name].env)
        check(name, result)
        times[name].push(result.ms)
      }
    }

    // Peak RSS: both sides preload the same reporter, so its own cost is on both.
    const rssFile = path.join(emptyHome, "..", `agent-auth-bench-rss-${process.pid}`)
    const reporter = path.join(root, "bench/lib/maxrss.cjs")
    const rss = { node: [], status: [] }
    for (let r = 0; r < Math.min(runs, 9); r++) {
      for (const name of r % 2 === 0 ? ["node", "status"] : ["status", "node"]) {
        const side = sides[name]
        const result = await run(["--require", reporter, ...side.args], { ...side.env, BENCH_MAXRSS_OUT: rssFile })
        check(name, result)
        rss[name].push(Number(fs.readFileSync(rssFile, "utf8")))
        fs.rmSync(rssFile, { force: true })
      }
    }

    const base = median(times.node)
    const figure = (name, ours, baseline, target, extra = {}) => ({
      name,
      unit: extra.unit ?? "ms",
      ours,
      baseline,
      ratio: ours / baseline,
      orientation: "ours/base",
      ...(target === undefined ? {} : { target: { op: "<=", value: target }, met: ours / baseline <= target }),
      rounds: runs,
      ...extra
    })
    return [
      figure("cold start: agent-auth status (empty home) / node -e 0", median(times.status), base, 2, { samples: times.status, baselineSamples: times.node }),
      figure("cold start: agent-auth token openai (valid stored login) / node -e 0", median(times.token), base, 2, { samples: times.token }),
      figure("cold start: agent-auth token openai (store auto, login in the file) / node -e 0", median(times.tokenAuto), base, 2, {
        samples: times.tokenAuto
      }),
      figure("peak RSS: agent-auth status / node -e 0", median(rss.status), median(rss.node), undefined, {
        unit: "KiB",
        rounds: rss.status.length,
        samples: rss.status,
        baselineSamples: rss.node
      })
    ]
  } finally {
    fs.rmSync(emptyHome, { recursive: true, force: true })
    fs.rmSync(tokenHome, { recursive: true, force: true })
  }
}
