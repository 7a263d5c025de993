/**
 * Hardening, crashes: real node processes writing `credentials.json` through the real file
 * store (test/hardening/fixtures/crash-writer.ts, bundled with esbuild) are killed with
 * SIGKILL at random moments, 100 times. After every kill the file parses and holds either
 * the last write the writer finished (old) or the one it was in (new), and the credential
 * it never touched; the next writer succeeds whatever lock the dead one left.
 */
import { AuthConfig, Domain } from "@agent-auth/core"
import { NodeTokenStore } from "@agent-auth/node"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { afterAll, beforeAll, expect } from "@effect/vitest"
import { Cause, DateTime, Duration, Effect, Exit, Logger, LogLevel, Option, Redacted, TestClock } from "effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as FileLock from "../../packages/node/src/internal/fileLock.js"
import { bundleWorker } from "../support/worker.js"
import { driveClock } from "./support/clock.js"
import { area } from "./support/table.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const KILLS = 100
// Homes written in parallel, each by one writer at a time: a lane waiting out a lock its last
// writer left does not hold the others up.
const LANES = 5

let workDir = ""
let writer = ""

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-hardening-crash-"))
  writer = path.join(workDir, "crash-writer.mjs")
  await bundleWorker(path.join(here, "fixtures", "crash-writer.ts"), writer)
}, 60_000)
afterAll(() => {
  if (workDir !== "") fs.rmSync(workDir, { recursive: true, force: true })
})

const ada = { provider: "acme", account: "ada" }
const bystander = { provider: "other", account: "default" }

/** The file store of `home`, used from this process (as the next agent-auth command would). */
const withStore = <A, E>(home: string, f: (store: NodeTokenStore.FileTokenStore) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.flatMap(NodeTokenStore.makeFile(), f).pipe(
      Effect.provide(AuthConfig.layerWith({ home })),
      Effect.provide(NodeFileSystem.layer),
      // The store warns when it takes over a lock; here that is the expected course.
      Effect.provide(Logger.minimumLogLevel(LogLevel.Error))
    )
  )

const seed = (home: string) =>
  withStore(home, (store) =>
    Effect.gen(function*() {
      const now = yield* DateTime.now
      yield* store.set(Domain.ApiKeyCredential.make({ ...bystander, key: Redacted.make("bystander-key-untouched"), obtainedAt: now }))
    }))

/** What the store reads now: the generation of ada's login and whether the bystander is intact. */
const inspectHome = (home: string) =>
  withStore(home, (store) =>
    Effect.gen(function*() {
      const login = yield* store.get(ada)
      const other = yield* store.get(bystander)
      const generation = Option.match(login, {
        onNone: () => 0,
        onSome: (c) => c._tag === "OAuthCredential" ? Number(Redacted.value(c.tokens.accessToken).replace("access-gen-", "")) : NaN
      })
      const refreshMatches = Option.match(login, {
        onNone: () => true,
        onSome: (c) => c._tag === "OAuthCredential" && c.tokens.refreshToken !== undefined && Redacted.value(c.tokens.refreshToken) === `refresh-gen-${generation}`
      })
      const intact = Option.isSome(other) && other.value._tag === "ApiKeyCredential" && Redacted.value(other.value.key) === "bystander-key-untouched"
      return { generation, refreshMatches, intact }
    }))

interface Killed {
  /** The last generation the writer reported finished (or found at start). */
  readonly confirmed: number
  readonly signal: NodeJS.Signals | null
  readonly code: number | null
  readonly stderr: string
}

/**
 * Starts a writer and kills it with SIGKILL `extraMs` after it has finished `afterWrites`
 * writes (0: after it is ready, before its first): the kill lands at a random point of the
 * next write, whatever the machine's load.
 */
const runAndKill = (home: string, afterWrites: number, extraMs: number): Promise<Killed> =>
  new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [writer, home], { stdio: ["ignore", "pipe", "pipe"] })
    let confirmed = -1
    let seen = -1
    let buffer = ""
    let stderr = ""
    let armed = false
    const giveUp = setTimeout(() => child.kill("SIGKILL"), 20_000)
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString()
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        const n = Number(line.replace("ready ", ""))
        if (!Number.isInteger(n)) continue
        confirmed = n
        seen++
        if (!armed && seen >= afterWrites) {
          armed = true
          setTimeout(() => child.kill("SIGKILL"), extraMs)
        }
      }
    })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(giveUp)
      resolve({ confirmed, signal, code, stderr })
    })
  })

const crash = area("crash", import.meta.url)

crash.promise(`${KILLS} SIGKILLs at random points of writing: the file is always the old or the new login`, "survived", async (t) => {
  const stats = { kills: 0, newer: 0, locksLeft: 0, emptyLocks: 0, tempsLeft: 0, writes: 0, slowestRecoveryMs: 0, slowestRoundMs: 0 }
  const lane = async (index: number) => {
    const home = path.join(workDir, `lane-${index}`)
    await seed(home)
    const lockPath = path.join(home, "credentials.json.lock")
    for (let round = 0; round < KILLS / LANES; round++) {
      const roundStart = Date.now()
      const before = (await inspectHome(home)).generation
      // Kill in the first write (taking or breaking a lock left by the last kill) or the second.
      const killed = await runAndKill(home, Math.floor(Math.random() * 2), Math.random() * 12)
      stats.kills++
      expect(killed.stderr).toBe("")
      expect(killed.signal).toBe("SIGKILL")
      expect(killed.confirmed).toBeGreaterThanOrEqual(before)
      stats.tempsLeft += fs.readdirSync(home).filter((f) => f.endsWith(".tmp")).length > 0 ? 1 : 0
      if (fs.existsSync(lockPath)) {
        stats.locksLeft++
        if (fs.readFileSync(lockPath, "utf8") === "") stats.emptyLocks++
      }
      // The file parses, holds the writer's last finished login or the one it was writing, and the bystander.
      const after = await inspectHome(home)
      expect([killed.confirmed, killed.confirmed + 1]).toContain(after.generation)
      expect(after.refreshMatches).toBe(true)
      expect(after.intact).toBe(true)
      JSON.parse(fs.readFileSync(path.join(home, "credentials.json"), "utf8"))
      if (after.generation === killed.confirmed + 1) stats.newer++
      stats.writes += after.generation - before
      stats.slowestRoundMs = Math.max(stats.slowestRoundMs, Date.now() - roundStart)
    }
    // Whatever the last kill left (a lock naming a dead process, an empty one, a break guard),
    // the next writer gets through.
    const started = Date.now()
    await withStore(home, (store) =>
      Effect.gen(function*() {
        const now = yield* DateTime.now
        yield* store.set(Domain.ApiKeyCredential.make({ ...bystander, key: Redacted.make("bystander-key-untouched"), obtainedAt: now }))
      }))
    stats.slowestRecoveryMs = Math.max(stats.slowestRecoveryMs, Date.now() - started)
    expect(fs.existsSync(lockPath)).toBe(false)
    // Nothing else is left either: no temp file holding a copy of some login's tokens.
    expect(fs.readdirSync(home).sort()).toEqual(["credentials.json"])
  }
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)))
  expect(stats.kills).toBe(KILLS)
  // The kills landed among real writes, not only in start-ups.
  expect(stats.writes).toBeGreaterThanOrEqual(KILLS / 4)
  t.note(
    `${stats.kills} kills over ${stats.writes} writes, ${stats.newer} of them with the new login just renamed in; ` +
      `${stats.locksLeft} left a lock (${stats.emptyLocks} empty) that later writers took over, the final write ` +
      `within ${(stats.slowestRecoveryMs / 1000).toFixed(1)} s (slowest round ${(stats.slowestRoundMs / 1000).toFixed(1)} s); ` +
      `a temp file seen after ${stats.tempsLeft} kills, none after the final writes`
  )
}, { timeout: 120_000 })

crash.promise("a writer killed while holding the lock: the stale lock is taken over at once", "survived", async (t) => {
  const home = path.join(workDir, "holder")
  await seed(home)
  const child = spawn(process.execPath, [writer, home, "hold"], { stdio: ["ignore", "pipe", "pipe"] })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => d.toString().includes("holding") && resolve())
    child.on("close", (code) => reject(new Error(`the holder exited (${code}) before holding the lock`)))
  })
  const lockPath = path.join(home, "credentials.json.lock")
  const holder = JSON.parse(fs.readFileSync(lockPath, "utf8")) as { pid: number }
  expect(holder.pid).toBe(child.pid)
  child.kill("SIGKILL")
  await new Promise((resolve) => child.once("close", resolve))
  const started = Date.now()
  await withStore(home, (store) =>
    Effect.gen(function*() {
      const now = yield* DateTime.now
      yield* store.set(Domain.ApiKeyCredential.make({ ...ada, key: Redacted.make("after-the-crash"), obtainedAt: now }))
    }))
  const took = Date.now() - started
  expect(took).toBeLessThan(2_000)
  expect(fs.existsSync(lockPath)).toBe(false)
  expect((await inspectHome(home)).intact).toBe(true)
  t.note(`lock of dead pid ${holder.pid} taken over; the next write took ${took} ms`)
})


crash.effect("a lock left empty (writer killed between creating and writing it): taken over after 5 s, not before", "survived", (t) =>
  Effect.gen(function*() {
    const home = path.join(workDir, "empty-lock")
    fs.mkdirSync(home, { recursive: true, mode: 0o700 })
    // What a writer killed right after its O_EXCL create leaves: a lock naming nobody.
    fs.writeFileSync(path.join(home, "credentials.json.lock"), "")
    yield* TestClock.setTime(Date.now())
    const write = Effect.gen(function*() {
      // staleAfter far away: only the empty-lock rule can let this write through.
      const store = yield* NodeTokenStore.makeFile({ lockStaleAfter: "10 minutes" })
      const now = yield* DateTime.now
      yield* store.set(Domain.ApiKeyCredential.make({ ...ada, key: Redacted.make("after-the-crash"), obtainedAt: now }))
    }).pipe(
      Effect.provide(AuthConfig.layerWith({ home })),
      Effect.provide(NodeFileSystem.layer),
      Effect.provide(Logger.minimumLogLevel(LogLevel.Error))
    )
    const { elapsed, exit } = yield* driveClock(write)
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(elapsed).toBeGreaterThanOrEqual(Duration.toMillis(Duration.seconds(5)))
    expect(elapsed).toBeLessThan(Duration.toMillis(Duration.minutes(10)))
    expect(fs.existsSync(path.join(home, "credentials.json.lock"))).toBe(false)
    t.note(`not before 5 s; through after ${elapsed / 1000} s of test time, with staleAfter set to 10 min`)
  }))

/** Whether this machine lets us start a process in a new PID namespace (root, or user namespaces). */
const canUnshare = (): boolean => {
  try {
    return spawnSync("unshare", ["-p", "-f", "--kill-child", "--mount-proc", "true"], { timeout: 5_000 }).status === 0
  } catch {
    return false
  }
}

crash.promise("a live lock holder in another PID namespace (a container on the same host name): not broken while its heartbeat is fresh", "survived", async (t) => {
  const home = path.join(workDir, "other-namespace")
  await seed(home)
  const lockPath = path.join(home, "credentials.json.lock")
  const unshare = canUnshare()
  let child: ChildProcess | undefined
  if (unshare) {
    // The holder runs as pid 300000 of a new PID namespace: a pid that names no process
    // here (pid_max is lower), so `kill(pid, 0)` alone would call it dead.
    child = spawn("unshare", [
      "-p", "-f", "--kill-child", "--mount-proc", "sh", "-c",
      `echo 299999 > /proc/sys/kernel/ns_last_pid; "${process.execPath}" "${writer}" "${home}" hold; :`
    ], { stdio: ["ignore", "pipe", "pipe"] })
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on("data", (d: Buffer) => d.toString().includes("holding") && resolve())
      child!.on("close", (code) => reject(new Error(`the holder exited (${code}) before holding the lock`)))
    })
  } else {
    // Simulated: the record such a holder writes, its heartbeat kept fresh by the test.
    fs.writeFileSync(lockPath, JSON.stringify({ pid: 300000, host: os.hostname(), pidns: "1", createdAt: new Date().toISOString(), nonce: "x" }))
  }
  try {
    const holder = JSON.parse(fs.readFileSync(lockPath, "utf8")) as { pid: number; host: string; pidns?: string }
    expect(holder.host).toBe(os.hostname())
    expect(holder.pidns).toBeDefined()
    expect(holder.pidns).not.toBe(FileLock.pidNamespace())
    // Meaningful only because this pid is dead as far as this namespace can tell.
    expect(FileLock.isProcessAlive(holder.pid)).toBe(false)
    const started = Date.now()
    const exit = await Effect.runPromise(
      Effect.flatMap(NodeTokenStore.makeFile({ lockTimeout: "3 seconds" }), (store) =>
        Effect.exit(Effect.flatMap(DateTime.now, (now) =>
          store.set(Domain.ApiKeyCredential.make({ ...ada, key: Redacted.make("must-wait"), obtainedAt: now }))))).pipe(
        Effect.provide(AuthConfig.layerWith({ home })),
        Effect.provide(NodeFileSystem.layer),
        Effect.provide(Logger.minimumLogLevel(LogLevel.Error))
      )
    )
    const waited = Date.now() - started
    // Not broken: the write waited its whole timeout and gave up, the holder's lock intact.
    expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.map((e) => e._tag), Option.getOrUndefined)).toBe("StoreLocked")
    expect(waited).toBeGreaterThanOrEqual(2_900)
    expect(JSON.parse(fs.readFileSync(lockPath, "utf8"))).toEqual(holder)
    // Once its heartbeat is old (the holder gone, the lock untouched for a minute), it is broken.
    child?.kill("SIGKILL")
    if (child !== undefined) await new Promise((resolve) => child!.once("close", resolve))
    const old = new Date(Date.now() - 60_000)
    fs.utimesSync(lockPath, old, old)
    await withStore(home, (store) =>
      Effect.flatMap(DateTime.now, (now) => store.set(Domain.ApiKeyCredential.make({ ...ada, key: Redacted.make("after"), obtainedAt: now }))))
    expect(fs.existsSync(lockPath)).toBe(false)
    t.note(
      `${unshare ? "unshare -p -f: holder pid" : "simulated record: pid"} ${holder.pid} in namespace ${holder.pidns} (ours ${FileLock.pidNamespace()}): ` +
        `a writer waited ${(waited / 1000).toFixed(1)} s and got StoreLocked; broken only once untouched for 60 s`
    )
  } finally {
    child?.kill("SIGKILL")
  }
}, { timeout: 30_000 })
