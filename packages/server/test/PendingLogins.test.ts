/**
 * `PendingLogins`: the shared suite on memory, SQLite and Postgres; then what only SQL
 * shows: two replicas (two connections with their own layers) on one database, the
 * secrets sealed at rest, a row edited to name another principal refused.
 */
import type { ConfigInvalid } from "@agent-auth/core"
import { StoreError } from "@agent-auth/core"
import { SecretBox, SqlStoreConfig } from "@agent-auth/sql"
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Redacted, TestClock } from "effect"
import type { Scope } from "effect"
import * as Crypto from "node:crypto"
import { PendingLogins } from "../src/index.js"
import * as PendingLoginsSuite from "./PendingLoginsSuite.js"

const newKey = () => Redacted.make(new Uint8Array(Crypto.randomBytes(32)))
const KEY = newKey()

/** A replica's view of a database: its own connection, pending logins and SQL client. */
const replica = (config: SqlStoreConfig.SqlStoreConfig, key = KEY) =>
  PendingLogins.layerSql({ location: config.location }).pipe(
    Layer.provideMerge(SqlStoreConfig.layerClient(config)),
    Layer.provide(SecretBox.layer(key))
  )

/** A new SQLite file in a temporary folder, removed with the layer. */
const sqliteConfig = Effect.gen(function*() {
  const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
  return yield* SqlStoreConfig.make({ kind: "sqlite", url: `file:${dir}/pending.db` })
}).pipe(Effect.provide(NodeFileSystem.layer))

const postgresConfig = Effect.suspend((): Effect.Effect<SqlStoreConfig.SqlStoreConfig, ConfigInvalid | StoreError> => {
  const url = process.env.AGENT_AUTH_TEST_DATABASE_URL
  // Never a silent skip: without the database this fails and says how to run it.
  if (url === undefined || url === "") {
    return Effect.fail(new StoreError({ path: "postgres", reason: "AGENT_AUTH_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh" }))
  }
  return SqlStoreConfig.make({ kind: "postgres", url, maxConnections: 4 })
})

PendingLoginsSuite.suite("layerMemory", PendingLogins.layerMemory)
PendingLoginsSuite.suite("layerSql (SQLite)", Layer.unwrapScoped(Effect.map(sqliteConfig, (c) => replica(c))))
PendingLoginsSuite.suite("layerSql (Postgres)", Layer.unwrapEffect(Effect.map(postgresConfig, (c) => replica(c))))

const login = (principal: string) => {
  const state = Crypto.randomBytes(16).toString("base64url")
  return { state, pending: { ...PendingLoginsSuite.pendingLogin("x", principal, 0), expiresAt: Date.now() + 600_000 } }
}

/** Two replicas on one database, each with its own connection. */
const twoReplicas = <A>(
  config: ConfigOf,
  body: (one: Context.Context<PendingLogins.PendingLogins | SqlClient.SqlClient>, two: Context.Context<PendingLogins.PendingLogins | SqlClient.SqlClient>) => Effect.Effect<A, unknown>
) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.now())
    const c = yield* config
    const one = yield* Layer.build(replica(c))
    const two = yield* Layer.build(replica(c))
    return yield* body(one, two)
  }).pipe(Effect.scoped)

const withState = (pending: PendingLogins.PendingLogin, state: string): PendingLogins.PendingLogin => ({
  ...pending,
  login: { ...pending.login, state }
})

type ConfigOf = Effect.Effect<SqlStoreConfig.SqlStoreConfig, unknown, Scope.Scope>
const databases: ReadonlyArray<readonly [string, ConfigOf]> = [["SQLite", sqliteConfig], ["Postgres", postgresConfig]]

for (const [name, config] of databases) {
  describe(`PendingLogins.layerSql on ${name}: replicas`, () => {
    it.effect("a login saved by one replica is taken by the other, once", () =>
      twoReplicas(config, (one, two) =>
        Effect.gen(function*() {
          const { pending, state } = login("alice")
          yield* Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.save(withState(pending, state))), one)
          const takes = yield* Effect.all([
            Effect.exit(Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.take(state)), two)),
            Effect.exit(Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.take(state)), one))
          ], { concurrency: "unbounded" })
          expect(takes.filter(Exit.isSuccess)).toHaveLength(1)
          const taken = takes.find(Exit.isSuccess)!
          expect(Exit.isSuccess(taken) && Redacted.value(taken.value.login.codeVerifier)).toBe(Redacted.value(pending.login.codeVerifier))
        })))

    it.effect("the table holds no state, verifier or nonce, plain or base64", () =>
      twoReplicas(config, (one) =>
        Effect.gen(function*() {
          const { pending, state } = login("alice")
          const saved = withState(pending, state)
          yield* Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.save(saved)), one)
          const sql = Context.get(one, SqlClient.SqlClient)
          const dump = JSON.stringify(yield* sql`SELECT * FROM agent_auth_pending_logins`)
          for (const secret of [state, Redacted.value(saved.login.codeVerifier), saved.login.nonce!]) {
            expect(dump).not.toContain(secret)
            expect(dump).not.toContain(Buffer.from(secret).toString("base64"))
          }
          expect(dump).toContain(Crypto.createHash("sha256").update(state).digest("hex"))
        })))

    it.effect("a row edited to name another principal does not open, and is used up", () =>
      twoReplicas(config, (one, two) =>
        Effect.gen(function*() {
          const { pending, state } = login("alice")
          yield* Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.save(withState(pending, state))), one)
          const sql = Context.get(one, SqlClient.SqlClient)
          const hash = Crypto.createHash("sha256").update(state).digest("hex")
          yield* sql`UPDATE agent_auth_pending_logins SET principal = 'mallory' WHERE state_hash = ${hash}`
          const refused = yield* Effect.flip(Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.take(state)), two))
          expect(refused._tag).toBe("StoreKeyRejected")
          const again = yield* Effect.flip(Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.take(state)), two))
          expect(again._tag === "SignInRefused" && again.reason).toBe("unknown")
        })))

    it.effect("a replica with another key cannot open the login, and says which variable to fix", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(Date.now())
        const c = yield* config
        const one = yield* Layer.build(replica(c))
        const other = yield* Layer.build(replica(c, newKey()))
        const { pending, state } = login("alice")
        yield* Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.save(withState(pending, state))), one)
        const refused = yield* Effect.flip(Effect.provide(Effect.flatMap(PendingLogins.PendingLogins, (p) => p.take(state)), other))
        expect(refused._tag).toBe("StoreKeyRejected")
        expect(refused.message).toContain("AGENT_AUTH_ENCRYPTION_KEY")
      }).pipe(Effect.scoped))
  })
}
