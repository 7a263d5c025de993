/**
 * The SQL store's figures (`node bench/run.mjs sql`, run inside scripts/with-postgres.sh):
 *
 * - `resolve(openai)` through the Postgres and SQLite stores with a valid token, against
 *   `Effect.succeed` of its answer (the held answer, as for the file store): target ≤ 3×.
 * - A refresh wave: 1,000 principals whose logins expired together, refreshed through
 *   `RefreshWave.refresh` (concurrency 16, the default) against the same 1,000 refreshed one
 *   after another (concurrency 1), the token endpoint answering in 10 ms (the fake server,
 *   in memory). The wave's connections to Postgres are counted while it runs
 *   (`pg_stat_activity`, polled every few milliseconds): never more than the pool (10).
 *
 * Bundled by run.mjs (CommonJS, libsql's native binding left out and loaded from the
 * workspace) and run as its own process; one JSON line per figure.
 */
import { AuthConfig, CredentialResolver, TokenStore } from "@agent-auth/core"
import { RefreshWave, SecretBox, SqlStoreConfig, SqlTokenStore } from "@agent-auth/sql"
import { FakeAuthServer } from "@agent-auth/testing"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { acmeFile, alternate, emit, emitRatio, HOUR, ISSUER, login, now, quick, repeat, services } from "./common.js"

const url = process.env.AGENT_AUTH_TEST_DATABASE_URL
if (url === undefined || url === "") {
  throw new Error("AGENT_AUTH_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh (run.mjs does)")
}
const key = SecretBox.layer(Redacted.make(new Uint8Array(Crypto.randomBytes(32))))

/** A new database on the bench server, for one figure. */
const newDatabase = async (): Promise<string> => {
  const name = `bench_${Crypto.randomBytes(5).toString("hex")}`
  const admin = new URL(url)
  admin.pathname = "/postgres"
  const config = await Effect.runPromise(SqlStoreConfig.make({ kind: "postgres", url: admin.toString() }))
  await Effect.runPromise(
    Effect.flatMap(SqlStoreConfig.SqlReader, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)).pipe(
      Effect.provide(SqlStoreConfig.layerClient(config))
    )
  )
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

// ---------------------------------------------------------------------------------------
// resolve with a valid token

const resolveFigure = async (kind: SqlStoreConfig.Kind) => {
  const rounds = quick ? 6 : 20
  const ops = quick ? 2_000 : 5_000
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-bench-sql-"))
  const config = await Effect.runPromise(
    SqlStoreConfig.make({ kind, url: kind === "postgres" ? await newDatabase() : `file:${path.join(dir, "credentials.db")}` })
  )
  const runtime = ManagedRuntime.make(
    services(
      Layer.mergeAll(
        AuthConfig.layerWith({ home: dir, file: acmeFile(ISSUER) }),
        SqlTokenStore.layerConfig(config).pipe(Layer.provide(key))
      )
    ).pipe(Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER })))
  )
  try {
    // As hot.ts does for the memory and file stores: the built-in `openai` (mode `auto`,
    // OPENAI_API_KEY unset and looked at first), the resolver taken once.
    delete process.env["OPENAI_API_KEY"]
    const valid = login({ provider: "openai", accessToken: "at-bench", refreshToken: "rt-bench", expiresAt: Date.now() + 10 * HOUR })
    const resolver = await runtime.runPromise(
      Effect.zipRight(Effect.flatMap(TokenStore.TokenStore, (s) => s.set(valid)), CredentialResolver.CredentialResolver)
    )
    const resolve = resolver.resolve("openai")
    const cached = await runtime.runPromise(resolve)
    const bare = Effect.succeed(cached)
    // Warm both sides.
    await runtime.runPromise(repeat(resolve, ops))
    await runtime.runPromise(repeat(bare, ops))
    const r = await alternate(rounds, ops, () => runtime.runPromise(repeat(resolve, ops)), () => runtime.runPromise(repeat(bare, ops)))
    emitRatio(`resolve(openai) (${kind} store, valid token) / Effect.succeed(cached)`, "ns/op", r, { op: "<=", value: 3 }, "ours/base")
  } finally {
    await runtime.dispose()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// a refresh wave

const waveFigure = async () => {
  const principals = Array.from({ length: 1_000 }, (_, i) => `user-${String(i).padStart(4, "0")}`)
  const loginKey = { provider: "acme", account: "ada@example.test" }
  const pool = SqlStoreConfig.defaults.maxConnections
  const config = await Effect.runPromise(SqlStoreConfig.make({ kind: "postgres", url: await newDatabase() }))
  const runtime = ManagedRuntime.make(
    services(
      Layer.mergeAll(
        AuthConfig.layerWith({ home: "/bench-home", file: acmeFile(ISSUER) }),
        SqlTokenStore.layerConfig(config).pipe(Layer.provide(key))
      )
    ).pipe(Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER })))
  )
  // A second client, outside the pool, that watches the pool's connections.
  const watcher = ManagedRuntime.make(SqlStoreConfig.layerClient({ ...config, maxConnections: 1 }))
  try {
    const server = await runtime.runPromise(FakeAuthServer.FakeAuthServer)
    await runtime.runPromise(server.inject(FakeAuthServer.Fault.delay("10 millis"), { grant: "refresh_token", times: 1_000_000 }))
    const stores = await runtime.runPromise(SqlTokenStore.SqlTokenStores)
    /** Every principal's login, expired a second ago, with a refresh token the server honours. */
    const expireAll = Effect.forEach(principals, (principal) =>
      Effect.gen(function*() {
        const store = yield* stores.forPrincipal(principal)
        const current = yield* store.get(loginKey)
        const refreshToken = Option.isSome(current) && current.value._tag === "OAuthCredential" && current.value.tokens.refreshToken
          ? Redacted.value(current.value.tokens.refreshToken)
          : (yield* server.issueTokens()).refresh_token
        yield* store.set(login({ provider: "acme", accessToken: `expired-${principal}`, refreshToken, expiresAt: Date.now() - 1000 }))
      }), { concurrency: 8, discard: true })
    const refreshes = Effect.map(server.counts, (c) => c.refreshToken)
    let maxConnections = 0
    const connections = Effect.flatMap(SqlStoreConfig.SqlReader, (sql) =>
      sql<{ n: number | string }>`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'agent-auth' AND datname = current_database()`)
    const wave = (concurrency: number) => async () => {
      await runtime.runPromise(expireAll)
      const before = await runtime.runPromise(refreshes)
      let watching = true
      // Connections of the pool (the watcher's own is excluded: it is one connection, counted and subtracted).
      const watch = (async () => {
        while (watching) {
          const [row] = await watcher.runPromise(connections)
          maxConnections = Math.max(maxConnections, Number(row!.n) - 1)
          await new Promise((r) => setTimeout(r, 3))
        }
      })()
      const t0 = now()
      const outcomes = await runtime.runPromise(RefreshWave.refresh(principals, loginKey, { concurrency }))
      const elapsed = Number(now() - t0)
      watching = false
      await watch
      const failed = outcomes.filter((o) => o.result._tag === "Left").length
      const spent = (await runtime.runPromise(refreshes)) - before
      if (failed > 0 || spent !== principals.length) throw new Error(`wave of ${concurrency}: ${failed} failed, ${spent} refreshes`)
      return elapsed
    }
    // Discovery once, outside the timing.
    await wave(RefreshWave.defaultConcurrency)()
    maxConnections = 0
    const rounds = quick ? 1 : 3
    const a: Array<number> = []
    const b: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        a.push(await wave(RefreshWave.defaultConcurrency)())
        b.push(await wave(1)())
      } else {
        b.push(await wave(1)())
        a.push(await wave(RefreshWave.defaultConcurrency)())
      }
    }
    const median = (xs: Array<number>) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!
    emitRatio(
      `refresh wave: 1000 principals, concurrency ${RefreshWave.defaultConcurrency} / one after another (token endpoint 10 ms)`,
      "ns",
      { ours: { median: median(a), samples: a }, base: { median: median(b), samples: b } },
      { op: "<=", value: 1 },
      "ours/base"
    )
    emit({
      name: `refresh wave: most connections of the pool open at once (pool ${pool})`,
      unit: "calls",
      ours: maxConnections,
      baseline: pool,
      ratio: maxConnections,
      orientation: "ours/base",
      target: { op: "<=", value: pool },
      met: maxConnections <= pool,
      rounds
    })
  } finally {
    await watcher.dispose()
    await runtime.dispose()
  }
}

const main = async () => {
  await resolveFigure("postgres")
  await resolveFigure("sqlite")
  await waveFigure()
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
