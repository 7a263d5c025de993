import { AuthConfig, Domain, TokenStore } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Duration, Effect, Exit, Fiber, Layer, Logger, Option, Redacted, Scope, TestClock } from "effect"
import { spawnSync } from "node:child_process"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as NodePath from "node:path"
import * as TokenStoreSuite from "@agent-auth/testing/TokenStoreSuite"
import * as FileLock from "../src/internal/fileLock.js"
import * as NodeTokenStore from "../src/NodeTokenStore.js"

/** What this process's lock records say about its PID namespace (Linux). */
const ownNamespace = FileLock.pidNamespace() === undefined ? {} : { pidns: FileLock.pidNamespace()! }

/** A fresh, not yet existing home folder inside a temp folder removed with the scope. */
const tempHome: Effect.Effect<string, never, FileSystem.FileSystem | Scope.Scope> = Effect.flatMap(
  FileSystem.FileSystem,
  (fs) => fs.makeTempDirectoryScoped({ prefix: "agent-auth-store-" })
).pipe(Effect.map((dir) => NodePath.join(dir, "home")), Effect.orDie)

// The shared suite, each test with a home folder of its own.
TokenStoreSuite.suite(
  "layerFile",
  Layer.unwrapScoped(
    Effect.map(tempHome, (home) => NodeTokenStore.layerFile.pipe(Layer.provide(AuthConfig.layerWith({ home }))))
  ).pipe(Layer.provide(NodeFileSystem.layer))
)

interface Fixture {
  readonly home: string
  readonly path: string
  readonly store: NodeTokenStore.FileTokenStore
  /** Another store on the same file, as another process would have. */
  readonly other: () => Effect.Effect<NodeTokenStore.FileTokenStore>
}

const fixture = (
  options: Omit<NodeTokenStore.FileOptions, "path"> = {}
): Effect.Effect<Fixture, never, Scope.Scope> =>
  Effect.gen(function*() {
    const home = yield* tempHome
    const make = () => NodeTokenStore.makeFile(options).pipe(Effect.provide(AuthConfig.layerWith({ home })))
    const store = yield* make()
    const fs = yield* FileSystem.FileSystem
    return {
      home,
      path: store.path,
      store,
      other: () => make().pipe(Effect.provideService(FileSystem.FileSystem, fs))
    }
  }).pipe(Effect.provide(NodeFileSystem.layer))

const key = { provider: "openai", account: "work" }
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)
const modeOf = (p: string) => promise(() => fsp.stat(p)).pipe(Effect.map((s) => s.mode & 0o777))
const readJson = (p: string) => promise(() => fsp.readFile(p, "utf8")).pipe(Effect.map((t) => JSON.parse(t) as Record<string, unknown>))
const exists = (p: string) => promise(() => fsp.access(p).then(() => true, () => false))

/** A pid no process has: one that just exited. */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ["-e", "0"])
  if (child.pid === undefined || child.pid <= 0) throw new Error("no child pid")
  return child.pid
}

const writeLock = (path: string, holder: Record<string, unknown>) =>
  promise(() => fsp.mkdir(NodePath.dirname(path), { recursive: true, mode: 0o700 })).pipe(
    Effect.zipRight(promise(() => fsp.writeFile(`${path}.lock`, JSON.stringify(holder), { mode: 0o600 })))
  )

/** Lets file I/O callbacks run, since TestClock only moves the fibers' clock. */
const letIoRun = promise(() => new Promise<void>((resolve) => setImmediate(resolve))).pipe(Effect.repeatN(3))

/** Moves the TestClock by `step` until `fiber` ends or `limit` is reached; the exit, if any. */
const advanceUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>, step: Duration.DurationInput, limit: Duration.DurationInput) =>
  Effect.gen(function*() {
    let elapsed = Duration.zero
    while (Duration.lessThan(elapsed, Duration.decode(limit))) {
      yield* letIoRun
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return exit
      yield* TestClock.adjust(step)
      elapsed = Duration.sum(elapsed, step)
    }
    yield* letIoRun
    return yield* Fiber.poll(fiber)
  })

describe("NodeTokenStore.layerFile", () => {
  it.scoped("writes the file 0600 in a folder it creates 0700, with no lock or temp file left", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      expect(path).toBe(NodePath.join(home, "credentials.json"))
      expect(store.location).toBe(path)
      expect(yield* exists(home)).toBe(false)
      yield* store.set(TokenStoreSuite.oauthCredential("openai", "work"))
      expect(yield* modeOf(path)).toBe(0o600)
      expect(yield* modeOf(home)).toBe(0o700)
      expect((yield* promise(() => fsp.readdir(home))).sort()).toEqual(["credentials.json"])
      const json = yield* readJson(path)
      expect(json.version).toBe(1)
      // Secrets are plain strings only in the file.
      expect(json.credentials).toEqual([TokenStoreSuite.encoded(TokenStoreSuite.oauthCredential("openai", "work"))])
      expect(yield* store.check).toEqual([])
    }))

  it.scoped("a file or folder open to others is reported, and repaired by the next write", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "a"))
      yield* promise(() => fsp.chmod(path, 0o644))
      yield* promise(() => fsp.chmod(home, 0o755))
      const warnings = yield* store.check
      expect(warnings.length).toBe(2)
      expect(warnings[0]).toContain("0644")
      expect(warnings[1]).toContain("0755")
      const inspection = yield* NodeTokenStore.inspect(path)
      expect(inspection.exists).toBe(true)
      expect(inspection.mode).toBe(0o644)
      expect(inspection.folderMode).toBe(0o755)
      // Reads still work (and do not chmod); the next write repairs both.
      expect(Option.isSome(yield* store.get({ provider: "openai", account: "a" }))).toBe(true)
      expect(yield* modeOf(path)).toBe(0o644)
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "b"))
      expect(yield* modeOf(path)).toBe(0o600)
      expect(yield* modeOf(home)).toBe(0o700)
      expect(yield* store.check).toEqual([])
    }))

  it.scoped("a symbolic link at the file's path is refused, and its target left alone", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      const elsewhere = NodePath.join(NodePath.dirname(home), "elsewhere.json")
      const content = JSON.stringify({ version: 1, credentials: [] })
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() => fsp.writeFile(elsewhere, content))
      yield* promise(() => fsp.symlink(elsewhere, path))
      const getError = yield* Effect.flip(store.get(key))
      expect(getError._tag).toBe("StorePermissions")
      expect(getError.message).toContain("symbolic link")
      const setError = yield* Effect.flip(store.set(TokenStoreSuite.apiKeyCredential("openai", "work")))
      expect(setError._tag).toBe("StorePermissions")
      expect(yield* promise(() => fsp.readFile(elsewhere, "utf8"))).toBe(content)
      expect((yield* promise(() => fsp.lstat(path))).isSymbolicLink()).toBe(true)
      const inspection = yield* NodeTokenStore.inspect(path)
      expect(inspection.symlink).toBe(true)
      expect(inspection.warnings.join()).toContain("symbolic link")
    }))

  it.scoped("a file that is not JSON: StoreCorrupted, moved aside intact, then a fresh file", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      const canary = "sk-canary-0123456789abcdef"
      const content = `{"version": 1, "credentials": [ ${canary}`
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() => fsp.writeFile(path, content, { mode: 0o600 }))
      const error = yield* Effect.flip(store.get(key))
      expect(error._tag).toBe("StoreCorrupted")
      if (error._tag !== "StoreCorrupted") return
      expect(error.path).toBe(path)
      expect(error.movedTo).toMatch(/credentials\.json\.corrupt-\d{8}T\d{9}Z$/)
      expect(NodePath.dirname(error.movedTo!)).toBe(home)
      expect(yield* promise(() => fsp.readFile(error.movedTo!, "utf8"))).toBe(content)
      expect(JSON.stringify(error)).not.toContain(canary)
      expect(error.message).not.toContain(canary)
      expect(error.message).toContain(error.movedTo!)
      expect(yield* exists(path)).toBe(false)
      expect(yield* exists(`${path}.lock`)).toBe(false)
      // The next operations start anew.
      expect(Option.isNone(yield* store.get(key))).toBe(true)
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "work"))
      expect((yield* readJson(path)).credentials).toHaveLength(1)
      expect(yield* promise(() => fsp.readFile(error.movedTo!, "utf8"))).toBe(content)
    }))

  it.scoped("one entry that fails the schema costs only itself: the others are used, it is reported once and kept byte for byte", () =>
    Effect.gen(function*() {
      const { home, path, store, other } = yield* fixture()
      const good = TokenStoreSuite.encoded(TokenStoreSuite.apiKeyCredential("openai", "a"))
      // Written by hand, spacing and all: a rewrite must keep these exact bytes.
      const badText = `{ "_tag": "ApiKeyCredential", "provider": "openai", "account": "b",\n  "key": "sk-canary-0123456789", "obtainedAt": "sk-canary-secret-in-a-date", "n": 1.50 }`
      const content = `{"version": 1, "credentials": [${JSON.stringify(good)}, ${badText}]}`
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() => fsp.writeFile(path, content, { mode: 0o600 }))
      const logs: Array<string> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(message))))
      // Every good entry is usable; the bad one is skipped.
      const got = yield* store.get({ provider: "openai", account: "a" }).pipe(Effect.provide(capture))
      expect(Option.isSome(got)).toBe(true)
      expect((yield* store.list().pipe(Effect.provide(capture))).map(Domain.keyString)).toEqual(["openai/a"])
      expect(Option.isNone(yield* store.get({ provider: "openai", account: "b" }).pipe(Effect.provide(capture)))).toBe(true)
      // Reported once, naming the key, where it failed, and the command that replaces it; never its content.
      expect(logs).toEqual([
        `agent-auth: the stored login openai/b in ${path} could not be read (credentials[1].obtainedAt does not match the schema); it is kept in the file and skipped: ` +
        `\`agent-auth login openai --with-api-key --account b\` replaces it, \`agent-auth logout openai --account b\` removes it.`
      ])
      expect(logs.join("")).not.toContain("sk-canary")
      // The file was not set aside.
      expect((yield* promise(() => fsp.readdir(home))).sort()).toEqual(["credentials.json"])
      // A write of another login keeps the bad entry's bytes, and the file stays valid JSON.
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "c"))
      const afterWrite = yield* promise(() => fsp.readFile(path, "utf8"))
      expect(afterWrite).toContain(badText)
      expect((JSON.parse(afterWrite) as { credentials: Array<unknown> }).credentials).toHaveLength(3)
      // Another store (another process) reads the same: two good, one unreadable.
      const second = yield* other()
      expect((yield* second.list()).map(Domain.keyString)).toEqual(["openai/a", "openai/c"])
      expect((yield* second.unreadable).map((e) => [e.key, e.reason])).toEqual([
        ["openai/b", "credentials[2].obtainedAt does not match the schema"]
      ])
      // A rewrite by the other store keeps it too.
      yield* second.remove({ provider: "openai", account: "c" })
      expect(yield* promise(() => fsp.readFile(path, "utf8"))).toContain(badText)
      // Logging in again to that account replaces it.
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "b"))
      const replaced = yield* promise(() => fsp.readFile(path, "utf8"))
      expect(replaced).not.toContain("sk-canary")
      expect((yield* store.list()).map(Domain.keyString)).toEqual(["openai/a", "openai/b"])
      expect(yield* store.unreadable).toEqual([])
    }))

  it.scoped("an unreadable entry is removed by a logout of its key (remove answers true); one naming no key says to edit the file", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      const good = TokenStoreSuite.encoded(TokenStoreSuite.apiKeyCredential("openai", "a"))
      const content = JSON.stringify({ version: 1, credentials: [good, { _tag: "FutureCredential", provider: "openai", account: "b" }, 42] })
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() => fsp.writeFile(path, content, { mode: 0o600 }))
      const bad = yield* store.unreadable
      expect(bad.map((e) => e.key)).toEqual(["openai/b", undefined])
      expect(NodeTokenStore.unreadableEntryMessage(path, bad[1]!)).toContain("remove it from the file by hand")
      expect(yield* store.remove({ provider: "openai", account: "b" })).toBe(true)
      const json = (yield* readJson(path)) as { credentials: Array<unknown> }
      expect(json.credentials).toEqual([good, 42])
      expect(yield* store.remove({ provider: "openai", account: "b" })).toBe(false)
    }))

  it.scoped("unreadable entries are kept byte for byte whatever their text: escapes, brackets in strings, numbers, odd spacing", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      const good = JSON.stringify(TokenStoreSuite.encoded(TokenStoreSuite.apiKeyCredential("openai", "a")))
      const bad = [
        `{"provider":"openai","account":"b","note":"a \\"quoted\\" ] } [ { , string \\\\","n":[1,2.50,-3e+2,{"x":[]}],"ok":true,"odd":"one \\" ] quote"}`,
        `{ "provider" : "openai" ,\t"account" : "c" , "v" : null }`,
        `-12.5e-1`,
        `"just a string, with ] and }"`,
        `[ [ ], { } ]`
      ]
      // `credentials` is not the first key, and an earlier one is shadowed (JSON.parse keeps the last).
      const content = `{ "extra": {"credentials": [1]}, "credentials": [], "version": 1,\n "credentials" : [ ${bad[0]} ,${good},\n${bad.slice(1).join(" ,\n ")}\n ] }`
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() => fsp.writeFile(path, content, { mode: 0o600 }))
      expect((yield* store.unreadable).map((e) => e.raw)).toEqual(bad)
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "z"))
      const after = yield* promise(() => fsp.readFile(path, "utf8"))
      for (const text of bad) expect(after).toContain(text)
      const json = JSON.parse(after) as { credentials: Array<unknown>; extra: unknown }
      expect(json.credentials).toHaveLength(7)
      expect(json.extra).toEqual({ credentials: [1] })
      expect((yield* store.list()).map(Domain.keyString)).toEqual(["openai/a", "openai/z"])
    }))

  it.scoped("a credentials field that is not an array: the whole file is set aside, as before", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      const content = JSON.stringify({ version: 1, credentials: { "openai/a": {} } })
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() => fsp.writeFile(path, content, { mode: 0o600 }))
      const error = yield* Effect.flip(store.set(TokenStoreSuite.apiKeyCredential("openai", "c")))
      expect(error._tag).toBe("StoreCorrupted")
      if (error._tag !== "StoreCorrupted") return
      expect(error.reason).toBe("it has no credentials array")
      expect(yield* promise(() => fsp.readFile(error.movedTo!, "utf8"))).toBe(content)
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "c"))
      expect((yield* store.list()).map(Domain.keyString)).toEqual(["openai/c"])
    }))

  it.scoped("a file of a newer version is reported, left in place, and not written", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      const content = JSON.stringify({ version: 2, credentials: [{ anything: true }] })
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() => fsp.writeFile(path, content, { mode: 0o600 }))
      const error = yield* Effect.flip(store.get(key))
      expect(error._tag === "StoreCorrupted" && error.movedTo).toBe(undefined)
      expect(error.message).toContain("newer agent-auth")
      const setError = yield* Effect.flip(store.set(TokenStoreSuite.apiKeyCredential("openai", "work")))
      expect(setError._tag).toBe("StoreCorrupted")
      expect(yield* promise(() => fsp.readFile(path, "utf8"))).toBe(content)
      expect((yield* promise(() => fsp.readdir(home))).sort()).toEqual(["credentials.json"])
    }))

  it.scoped("unknown top-level fields survive a rewrite", () =>
    Effect.gen(function*() {
      const { home, path, store } = yield* fixture()
      yield* promise(() => fsp.mkdir(home, { mode: 0o700 }))
      yield* promise(() =>
        fsp.writeFile(
          path,
          JSON.stringify({ version: 1, defaults: { openai: "work" }, credentials: [], future: [1, { x: null }] }),
          { mode: 0o600 }
        )
      )
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "work"))
      yield* store.remove({ provider: "openai", account: "nobody" })
      yield* store.set(TokenStoreSuite.apiKeyCredential("anthropic", "x"))
      const json = yield* readJson(path)
      expect(json.defaults).toEqual({ openai: "work" })
      expect(json.future).toEqual([1, { x: null }])
      expect(json.version).toBe(1)
      expect((json.credentials as Array<{ provider: string }>).map((c) => c.provider)).toEqual(["anthropic", "openai"])
    }))

  it.scoped("modify returning the object it was given does not touch the file", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture()
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "work"))
      const before = yield* promise(() => fsp.stat(path, { bigint: true }))
      yield* store.modify(key, (current) => Effect.succeed(current))
      yield* store.modify({ provider: "openai", account: "absent" }, (current) => Effect.succeed(current))
      const after = yield* promise(() => fsp.stat(path, { bigint: true }))
      expect(after.ino).toBe(before.ino)
      expect(after.mtimeNs).toBe(before.mtimeNs)
      // Whereas a changed value is a new file (written by rename).
      yield* store.modify(key, TokenStoreSuite.increment(key))
      expect((yield* promise(() => fsp.stat(path, { bigint: true }))).ino).not.toBe(before.ino)
    }))

  it.scoped("reads are cached: no parse while the file is unchanged, one after another process writes", () =>
    Effect.gen(function*() {
      const { other, store } = yield* fixture()
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "work", "1"))
      // Our own write is remembered: reading it back parses nothing.
      yield* store.get(key)
      yield* store.get(key)
      yield* store.list()
      expect(yield* store.parses).toBe(0)
      // Another writer (another process, as far as the file knows).
      const second = yield* other()
      expect(TokenStoreSuite.counterOf(yield* second.get(key))).toBe(1)
      expect(yield* second.parses).toBe(1)
      yield* second.get(key)
      expect(yield* second.parses).toBe(1)
      yield* second.modify(key, TokenStoreSuite.increment(key))
      expect(TokenStoreSuite.counterOf(yield* store.get(key))).toBe(2)
      expect(yield* store.parses).toBe(1)
      expect(TokenStoreSuite.counterOf(yield* store.get(key))).toBe(2)
      expect(yield* store.parses).toBe(1)
      // modify re-reads under the lock: it sees the other's write, then remembers its own.
      yield* second.modify(key, TokenStoreSuite.increment(key))
      yield* store.modify(key, TokenStoreSuite.increment(key))
      expect(yield* store.parses).toBe(2)
      expect(TokenStoreSuite.counterOf(yield* second.get(key))).toBe(4)
    }))

  it.scoped("a lock left by a dead process is taken over", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture()
      const pid = deadPid()
      yield* writeLock(path, { pid, host: os.hostname(), ...ownNamespace, createdAt: new Date().toISOString(), nonce: "dead" })
      // No clock moves: the takeover needs no waiting.
      yield* store.modify(key, TokenStoreSuite.increment(key))
      expect(TokenStoreSuite.counterOf(yield* store.get(key))).toBe(1)
      expect(yield* exists(`${path}.lock`)).toBe(false)
      expect(yield* exists(`${path}.lock.break`)).toBe(false)
    }))

  it.scoped("a break guard left by a breaker killed after it removed the lock is cleared by the next writer; a live one's is not", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture()
      const guard = `${path}.lock.break`
      const write = (pid: number) =>
        promise(() => fsp.mkdir(NodePath.dirname(path), { recursive: true, mode: 0o700 })).pipe(
          Effect.zipRight(promise(() => fsp.writeFile(guard, JSON.stringify({ pid, host: os.hostname(), ...ownNamespace, at: 0 }), { mode: 0o600 })))
        )
      // A live breaker (this process) holds the guard: left alone.
      yield* write(process.pid)
      yield* store.modify(key, TokenStoreSuite.increment(key))
      expect(yield* exists(guard)).toBe(true)
      // Its breaker is dead: the next writer clears it.
      yield* write(deadPid())
      yield* store.modify(key, TokenStoreSuite.increment(key))
      expect(yield* exists(guard)).toBe(false)
      expect(TokenStoreSuite.counterOf(yield* store.get(key))).toBe(2)
    }))

  it.scoped("a lock untouched for longer than lockStaleAfter is taken over (holder on another host)", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture({ lockStaleAfter: "30 seconds" })
      yield* TestClock.setTime(Date.now())
      yield* writeLock(path, { pid: process.pid, host: "another-host", createdAt: "2020-01-01T00:00:00.000Z", nonce: "x" })
      const old = new Date(Date.now() - 31_000)
      yield* promise(() => fsp.utimes(`${path}.lock`, old, old))
      yield* store.set(TokenStoreSuite.apiKeyCredential("openai", "work", "7"))
      expect(TokenStoreSuite.counterOf(yield* store.get(key))).toBe(7)
      expect(yield* exists(`${path}.lock`)).toBe(false)
    }))

  it.scoped("a live lock recently touched is not taken over", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture({ lockTimeout: "2 seconds", lockStaleAfter: "30 seconds" })
      yield* TestClock.setTime(Date.now())
      yield* writeLock(path, { pid: process.pid, host: "another-host", createdAt: "2020-01-01T00:00:00.000Z", nonce: "x" })
      const fiber = yield* Effect.fork(store.set(TokenStoreSuite.apiKeyCredential("openai", "work")))
      const exit = yield* advanceUntilDone(fiber, "500 millis", "10 seconds")
      expect(Option.isSome(exit) && Exit.isFailure(exit.value)).toBe(true)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag === "StoreLocked" && error.holderPid).toBe(process.pid)
      expect(yield* exists(path)).toBe(false)
      expect(yield* exists(`${path}.lock`)).toBe(true)
    }))

  it.scoped("a live lock held past lockTimeout (90 s by default) fails StoreLocked naming the holder", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture()
      yield* writeLock(path, { pid: process.pid, host: os.hostname(), createdAt: new Date().toISOString(), ...ownNamespace, nonce: "live" })
      const fiber = yield* Effect.fork(store.modify(key, TokenStoreSuite.increment(key)))
      // Still waiting just before the timeout…
      expect(Option.isNone(yield* advanceUntilDone(fiber, "1 second", "89 seconds"))).toBe(true)
      // …and failed just after it.
      const exit = yield* advanceUntilDone(fiber, "1 second", "5 seconds")
      expect(Option.isSome(exit)).toBe(true)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("StoreLocked")
      if (error._tag !== "StoreLocked") return
      expect(error.holderPid).toBe(process.pid)
      expect(error.waitedMs).toBeGreaterThanOrEqual(90_000)
      expect(error.waitedMs).toBeLessThan(95_000)
      expect(error.path).toBe(path)
      // Not ours: the lock stays, nothing was written.
      expect(yield* exists(`${path}.lock`)).toBe(true)
      expect(yield* exists(path)).toBe(false)
    }))

  it.scoped("a writer waits for a live lock and proceeds once it is released", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture()
      yield* writeLock(path, { pid: process.pid, host: os.hostname(), createdAt: new Date().toISOString(), ...ownNamespace, nonce: "live" })
      const fiber = yield* Effect.fork(store.modify(key, TokenStoreSuite.increment(key)))
      expect(Option.isNone(yield* advanceUntilDone(fiber, "1 second", "10 seconds"))).toBe(true)
      yield* promise(() => fsp.rm(`${path}.lock`))
      const exit = yield* advanceUntilDone(fiber, "100 millis", "5 seconds")
      expect(Option.isSome(exit) && Exit.isSuccess(exit.value)).toBe(true)
      expect(TokenStoreSuite.counterOf(yield* store.get(key))).toBe(1)
      expect(yield* exists(`${path}.lock`)).toBe(false)
    }))

  it.scoped("the lock is held while f runs, and its file names this process", () =>
    Effect.gen(function*() {
      const { path, store } = yield* fixture()
      const holder = yield* store.modify(key, (current) =>
        Effect.map(readJson(`${path}.lock`), (lock) => {
          expect(lock.pid).toBe(process.pid)
          expect(lock.host).toBe(os.hostname())
          expect(typeof lock.createdAt).toBe("string")
          return current
        }))
      expect(Option.isNone(holder)).toBe(true)
      expect(yield* exists(`${path}.lock`)).toBe(false)
    }))

  // Two independent stores on one file contend through the lock file itself (each has its
  // own semaphore), polling with the real backoff: real time, as between processes.
  it.live("two stores on one file: 2 × 40 concurrent increments lose none", () =>
    Effect.scoped(Effect.gen(function*() {
      const { other, path, store } = yield* fixture()
      const second = yield* other()
      const k = { provider: "demo", account: "counter" }
      yield* Effect.all(
        [store, second].map((s) => Effect.forEach(Array.from({ length: 40 }), () => s.modify(k, TokenStoreSuite.increment(k)), { concurrency: "unbounded", discard: true })),
        { concurrency: "unbounded", discard: true }
      )
      expect(TokenStoreSuite.counterOf(yield* store.get(k))).toBe(80)
      expect(yield* exists(`${path}.lock`)).toBe(false)
      const value = yield* second.get(k)
      expect(Option.isSome(value) && value.value._tag === "ApiKeyCredential" && Redacted.value(value.value.key)).toBe("80")
    })))

  it.live("a write by another instance (another process) changes revision at the next read, not before", () =>
    Effect.scoped(Effect.gen(function*() {
      const { other, store } = yield* fixture()
      const second = yield* other()
      const k = { provider: "demo", account: "a" }
      yield* store.set(TokenStoreSuite.apiKeyCredential("demo", "a", "sk-1"))
      yield* store.get(k)
      const seen = store.revision()
      yield* second.set(TokenStoreSuite.apiKeyCredential("demo", "a", "sk-2"))
      expect(store.revision()).toBe(seen)
      const value = yield* store.get(k)
      expect(Option.isSome(value) && value.value._tag === "ApiKeyCredential" && Redacted.value(value.value.key)).toBe("sk-2")
      expect(store.revision()).not.toBe(seen)
      const after = store.revision()
      yield* store.get(k)
      expect(store.revision()).toBe(after)
    })))

  it.effect("the layer reads AuthConfig.home", () =>
    Effect.gen(function*() {
      const store = yield* TokenStore.TokenStore
      expect(store.location).toBe(NodePath.resolve("/nonexistent-agent-auth-home/credentials.json"))
    }).pipe(
      Effect.provide(NodeTokenStore.layerFile),
      Effect.provide(AuthConfig.layerWith({ home: "/nonexistent-agent-auth-home" })),
      Effect.provide(NodeFileSystem.layer)
    ))
})
