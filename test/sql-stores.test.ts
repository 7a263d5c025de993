/**
 * The SQL stores across processes and machines, against a real authorization server
 * (oidc-provider, test/support/oidcProvider.ts) and the Postgres of scripts/with-postgres.sh:
 *
 * - 16 worker processes on two AGENT_AUTH_HOMEs (two machines: no file in common) share one
 *   Postgres; over 10 expiry cycles exactly one refresh reaches the server per expiry, no
 *   refresh token is ever replayed (the server would revoke the grant), and every worker
 *   gets the new, active token.
 * - A worker SIGKILLed while it holds a row's lock: another waiting on it proceeds once the
 *   dead worker's connection is gone.
 * - The CLI on SQLite: several `token` processes on one file refresh once.
 * - The CLI's configuration: `status` names the store; a missing URL or key exits 2 naming
 *   the variable; an unreachable database exits 4 within the connect timeout.
 */
import { Domain } from "@agent-auth/core"
import { SecretBox, SqlStoreConfig, SqlTokenStore } from "@agent-auth/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { build } from "esbuild"
import { Context, DateTime, Effect, Layer, Option, Redacted } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { freshDatabase } from "../packages/sql/test/support/postgres.js"
import { Browser } from "./support/browser.js"
import { cliEnv, finish, nextEvent, run, start } from "./support/cli.js"
import { CLIENT_ID, type OidcServer, SHORT_CLIENT_ID, startOidcProvider } from "./support/oidcProvider.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const PROVIDER = "op"
const EMAIL = "alice@example.test"
const LOGIN = { provider: PROVIDER, account: EMAIL }

let server: OidcServer
let workDir = ""
let worker = ""
const children: Array<ChildProcessWithoutNullStreams> = []

beforeAll(async () => {
  server = await startOidcProvider()
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-sql-"))
  worker = path.join(workDir, "sql-worker.cjs")
  // CommonJS, so libsql (native, left out: a Postgres worker never loads it) would be a
  // plain require at its point of use.
  await build({
    entryPoints: [path.join(here, "fixtures", "sql-worker.ts")],
    outfile: worker,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    logLevel: "error",
    external: ["libsql", "pg-native"]
  })
}, 60_000)

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL")
  await server?.close()
  if (workDir !== "") fs.rmSync(workDir, { recursive: true, force: true })
})

/** A home folder (one "machine") whose config.json names the server as provider `op`. */
const newHome = (clientId = CLIENT_ID) => {
  const home = fs.mkdtempSync(path.join(workDir, "home-"))
  fs.writeFileSync(
    path.join(home, "config.json"),
    JSON.stringify({
      providers: {
        [PROVIDER]: {
          kind: "oidc",
          issuer: server.issuer,
          clientId,
          scopes: ["openid", "offline_access", "email"],
          authorizeParams: { prompt: "consent" },
          apiBaseUrl: "https://llm.example.test/v1"
        }
      }
    })
  )
  return home
}

const newKey = () => Crypto.randomBytes(32).toString("base64")

/** `login --no-browser --json`, signing in at the server's own pages. */
const cliLogin = async (env: Record<string, string>) => {
  const child = start(["login", PROVIDER, "--no-browser", "--json"], env)
  const done = finish(child)
  const url = await nextEvent(child, "authorization_url")
  await new Browser().navigate(String(url.url), { fields: { login: "alice", password: "any-password" } })
  const result = await done
  expect(result.code, result.stderr).toBe(0)
}

/** A worker process (test/fixtures/sql-worker.ts), once it is connected and migrated. */
interface Worker {
  readonly child: ChildProcessWithoutNullStreams
  readonly send: (command: string) => void
  /** The next JSON line it writes. */
  readonly next: () => Promise<Record<string, unknown>>
  /** Whether it has written a line not yet taken by `next`. */
  readonly pending: () => number
}

const startWorker = async (env: Record<string, string>): Promise<Worker> => {
  const child = spawn(process.execPath, [worker], { env, stdio: ["pipe", "pipe", "pipe"] })
  children.push(child)
  const lines: Array<Record<string, unknown>> = []
  const waiting: Array<(line: Record<string, unknown>) => void> = []
  let buffer = ""
  let stderr = ""
  child.stderr.on("data", (d) => (stderr += d))
  child.stdout.on("data", (d: Buffer) => {
    buffer += d.toString()
    let nl: number
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>
      buffer = buffer.slice(nl + 1)
      const w = waiting.shift()
      if (w === undefined) lines.push(line)
      else w(line)
    }
  })
  let exited: Error | undefined
  const failures: Array<(error: Error) => void> = []
  child.once("close", (code, signal) => {
    exited = new Error(`worker exited (${code ?? signal}): ${stderr}`)
    for (const fail of failures.splice(0)) fail(exited)
  })
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const line = lines.shift()
      if (line !== undefined) return resolve(line)
      if (exited !== undefined) return reject(exited)
      waiting.push(resolve)
      failures.push(reject)
    })
  const w: Worker = { child, send: (c) => child.stdin.write(`${c}\n`), next, pending: () => lines.length }
  expect(await w.next()).toEqual({ ready: true })
  return w
}

/** The store of the default principal in the test process, over the same database and key. */
const storeOn = (url: string, key: string, kind: "postgres" | "sqlite" = "postgres") =>
  Effect.gen(function*() {
    const config = yield* SqlStoreConfig.make({ kind, url })
    const box = SecretBox.layer(Redacted.make(new Uint8Array(Buffer.from(key, "base64"))))
    const context = yield* Layer.build(SqlTokenStore.layerConfig(config).pipe(Layer.provide(box)))
    return Context.get(context, SqlTokenStore.SqlTokenStores)
  }).pipe(Effect.flatMap((stores) => stores.forPrincipal("default")), Effect.orDie)

/** The stored login's tokens (as the provider issued them). */
const storedTokens = (store: SqlTokenStore.SqlTokenStore) =>
  Effect.map(store.get(LOGIN), (c) => {
    const login = Option.getOrThrow(c)
    if (login._tag !== "OAuthCredential") throw new Error("not a login")
    return login
  }).pipe(Effect.orDie)

/** Marks the stored login expired (a second ago), as time would; the tokens stay as they are. */
const forceExpiry = (store: SqlTokenStore.SqlTokenStore) =>
  store.modify(LOGIN, (current) =>
    Effect.map(DateTime.now, (now) => {
      const login = Option.getOrThrow(current) as Domain.OAuthCredential
      return Option.some(
        new Domain.OAuthCredential({
          ...login,
          tokens: new Domain.TokenSet({ ...login.tokens, expiresAt: DateTime.subtract(now, { seconds: 1 }) })
        })
      )
    })).pipe(Effect.orDie)

const pause = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

describe("Postgres across processes and machines", () => {
  it.scopedLive("16 workers on two homes, 10 expiry cycles: 1 refresh per expiry, 0 replays, every worker gets the active token", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const key = newKey()
      const homes = [newHome(), newHome()]
      const envOf = (home: string) =>
        cliEnv(home, { AGENT_AUTH_STORE: "postgres", AGENT_AUTH_DATABASE_URL: url, AGENT_AUTH_ENCRYPTION_KEY: key })
      yield* Effect.promise(() => cliLogin(envOf(homes[0]!)))
      // Nothing of the login on either machine's disk: it is in the database.
      for (const home of homes) expect(fs.readdirSync(home)).toEqual(["config.json"])

      const workers = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 16 }, (_, i) => startWorker(envOf(homes[i % 2]!))))
      )
      const store = yield* storeOn(url, key)
      const revokedBefore = server.revokedGrants()
      let refreshes = server.grants("refresh_token")
      const perCycle: Array<number> = []
      for (let cycle = 0; cycle < 10; cycle++) {
        // Past the resolvers' 1-second window for changes made by other processes.
        yield* pause(1_100)
        const before = yield* storedTokens(store)
        yield* forceExpiry(store)
        const answers = yield* Effect.promise(() =>
          Promise.all(workers.map((w) => {
            w.send(`resolve ${PROVIDER}`)
            return w.next()
          }))
        )
        const after = yield* storedTokens(store)
        const fresh = Redacted.value(after.tokens.accessToken)
        expect(fresh).not.toBe(Redacted.value(before.tokens.accessToken))
        expect(answers).toEqual(workers.map(() => ({ token: fresh })))
        expect(yield* Effect.promise(() => server.introspect(fresh))).toMatchObject({ active: true })
        perCycle.push(server.grants("refresh_token") - refreshes)
        refreshes = server.grants("refresh_token")
      }
      expect(perCycle).toEqual(Array(10).fill(1))
      // A replayed refresh token makes the server revoke the grant: none was.
      expect(server.revokedGrants()).toBe(revokedBefore)
      const final = yield* storedTokens(store)
      expect(yield* Effect.promise(() => server.introspect(Redacted.value(final.tokens.refreshToken!), "refresh_token")))
        .toMatchObject({ active: true })
    }), { timeout: 120_000 })

  it.scopedLive("a worker SIGKILLed while it holds the lock: the one waiting proceeds once its connection is gone", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const key = newKey()
      const env = cliEnv(newHome(), { AGENT_AUTH_STORE: "postgres", AGENT_AUTH_DATABASE_URL: url, AGENT_AUTH_ENCRYPTION_KEY: key })
      const [holder, waiter] = yield* Effect.promise(() => Promise.all([startWorker(env), startWorker(env)]))
      holder!.send("hold demo counter")
      expect(yield* Effect.promise(() => holder!.next())).toEqual({ holding: true })
      waiter!.send("increment")
      // It waits: the holder is alive and inside the lock.
      yield* pause(1_500)
      expect(waiter!.pending()).toBe(0)
      const killedAt = Date.now()
      holder!.child.kill("SIGKILL")
      expect(yield* Effect.promise(() => waiter!.next())).toEqual({ counter: 1 })
      // Postgres sees the connection close at once on loopback; a wide margin for a loaded machine.
      expect(Date.now() - killedAt).toBeLessThan(10_000)
    }), { timeout: 60_000 })
})

describe("SQLite across processes (the CLI)", () => {
  it.scopedLive("6 `token` processes on one SQLite file: one refresh at the server, all print the new token", () =>
    Effect.gen(function*() {
      const home = newHome(SHORT_CLIENT_ID)
      const env = cliEnv(home, { AGENT_AUTH_STORE: "sqlite", AGENT_AUTH_ENCRYPTION_KEY: newKey() })
      yield* Effect.promise(() => cliLogin(env))
      // The default file, private; no credentials.json.
      expect(fs.readdirSync(home).filter((f) => f.startsWith("credentials")).sort()).toContain("credentials.db")
      expect(fs.existsSync(path.join(home, "credentials.json"))).toBe(false)
      expect(fs.statSync(path.join(home, "credentials.db")).mode & 0o777).toBe(0o600)
      // A 60-second token is due at half its lifetime (30 s from now): make it due at once.
      yield* forceExpiry(yield* storeOn(`file:${path.join(home, "credentials.db")}`, env.AGENT_AUTH_ENCRYPTION_KEY!, "sqlite"))
      const refreshesBefore = server.grants("refresh_token")
      const revokedBefore = server.revokedGrants()
      const results = yield* Effect.promise(() => Promise.all(Array.from({ length: 6 }, () => run(["token", PROVIDER], env))))
      for (const r of results) expect(r.code, r.stderr).toBe(0)
      expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
      expect(server.revokedGrants()).toBe(revokedBefore)
      const tokens = new Set(results.map((r) => r.stdout))
      expect(tokens.size).toBe(1)
      expect(yield* Effect.promise(() => server.introspect([...tokens][0]!.trim()))).toMatchObject({ active: true })
    }), { timeout: 60_000 })
})

describe("the CLI's SQL store settings", () => {
  const closedPort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as net.AddressInfo).port
        s.close(() => resolve(port))
      })
    })

  it.scopedLive("status names the store: postgres HOST:PORT/db, principal …", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const u = new URL(url)
      const env = cliEnv(newHome(), { AGENT_AUTH_STORE: "postgres", AGENT_AUTH_DATABASE_URL: url, AGENT_AUTH_ENCRYPTION_KEY: newKey() })
      const result = yield* Effect.promise(() => run(["status"], env))
      expect(result.stdout).toContain(`Store: postgres 127.0.0.1:${u.port}${u.pathname}, principal default`)
      expect(result.stderr + result.stdout).not.toContain(decodeURIComponent(u.password))
      const json = yield* Effect.promise(() => run(["status", "--json"], { ...env, AGENT_AUTH_PRINCIPAL: "team-ci" }))
      expect(JSON.parse(json.stdout.trim().split("\n").at(-1)!)).toMatchObject({
        store: `postgres 127.0.0.1:${u.port}${u.pathname}, principal team-ci`
      })
    }))

  it("a missing URL or key exits 2 naming the variable; an unreachable database exits 4 within the connect timeout", async () => {
    const home = newHome()
    const noUrl = await run(["status"], cliEnv(home, { AGENT_AUTH_STORE: "postgres", AGENT_AUTH_ENCRYPTION_KEY: newKey() }))
    expect(noUrl.code).toBe(2)
    expect(noUrl.stderr).toContain("AGENT_AUTH_DATABASE_URL")
    for (const store of ["postgres", "sqlite"]) {
      const noKey = await run(["token", PROVIDER], cliEnv(home, {
        AGENT_AUTH_STORE: store,
        ...(store === "postgres" ? { AGENT_AUTH_DATABASE_URL: "postgres://u@127.0.0.1:1/db" } : {})
      }))
      expect({ store, code: noKey.code }).toEqual({ store, code: 2 })
      expect(noKey.stderr).toContain("AGENT_AUTH_ENCRYPTION_KEY")
    }
    const port = await closedPort()
    const started = Date.now()
    const down = await run(["status"], cliEnv(home, {
      AGENT_AUTH_STORE: "postgres",
      AGENT_AUTH_DATABASE_URL: `postgres://u:pw-not-shown@127.0.0.1:${port}/db`,
      AGENT_AUTH_ENCRYPTION_KEY: newKey()
    }))
    expect(down.code).toBe(4)
    expect(down.stderr).toContain(`cannot reach the database at 127.0.0.1:${port}`)
    expect(down.stderr).not.toContain("pw-not-shown")
    // The connect timeout is 5 s; a refused port answers at once.
    expect(Date.now() - started).toBeLessThan(5_000 + 5_000)
  }, 60_000)
})
