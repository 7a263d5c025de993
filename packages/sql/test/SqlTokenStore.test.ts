/**
 * What the SQL store promises beyond the shared suite, on Postgres and on SQLite: nothing
 * secret at rest, key rotation, a wrong key refused with nothing overwritten, principals
 * kept apart, changes by another instance seen by `revision`, and an unreachable database
 * reported within the connect timeout.
 */
import { Domain, StoreKeyRejected } from "@agent-auth/core"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import * as TokenStoreSuite from "@agent-auth/testing/TokenStoreSuite"
import { Context, Effect, Layer, Option, Redacted, type Scope } from "effect"
import * as Crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as NodePath from "node:path"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlStoreConfig from "../src/SqlStoreConfig.js"
import * as SqlTokenStore from "../src/SqlTokenStore.js"
import { freshDatabase, pgDump } from "./support/postgres.js"

const newKey = () => Redacted.make(new Uint8Array(Crypto.randomBytes(32)))
const b64 = (k: Redacted.Redacted<Uint8Array>) => Buffer.from(Redacted.value(k)).toString("base64")

/** Distinctive secrets, long enough that finding any of them in a dump means a leak. */
const secrets = {
  access: `access-${Crypto.randomBytes(24).toString("hex")}`,
  refresh: `refresh-${Crypto.randomBytes(24).toString("hex")}`,
  id: `id-${Crypto.randomBytes(24).toString("hex")}`,
  apiKey: `sk-${Crypto.randomBytes(24).toString("hex")}`
}
const secretLogin = (account = "ada") => {
  const c = TokenStoreSuite.oauthCredential("openai", account, secrets.access)
  return new Domain.OAuthCredential({
    ...c,
    tokens: new Domain.TokenSet({
      ...c.tokens,
      refreshToken: Redacted.make(secrets.refresh),
      idToken: Redacted.make(secrets.id)
    })
  })
}

/** Every form a secret could leak in: plain, base64, base64url, hex. */
const forms = (text: string | Uint8Array): ReadonlyArray<string> => {
  const bytes = Buffer.from(text)
  const out = [bytes.toString("base64").replace(/=+$/, ""), bytes.toString("base64url"), bytes.toString("hex")]
  if (typeof text === "string") out.push(text)
  // base64 of the text at each of the three alignments inside a longer string.
  for (const shift of [1, 2]) out.push(Buffer.concat([Buffer.alloc(shift), bytes]).toString("base64").slice(4, -4))
  return out
}

interface Backend {
  readonly name: string
  /** A new empty database; `dump` gives every byte it holds as text. */
  readonly database: Effect.Effect<{ readonly url: string; readonly dump: () => string }, never, Scope.Scope>
  readonly kind: SqlStoreConfig.Kind
}

const postgres: Backend = {
  name: "Postgres",
  kind: "postgres",
  database: Effect.map(freshDatabase, (url) => ({ url, dump: () => pgDump(url) }))
}

const sqlite: Backend = {
  name: "SQLite",
  kind: "sqlite",
  database: Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(NodePath.join(os.tmpdir(), "agent-auth-sqlite-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => ({
      url: `file:${NodePath.join(dir, "credentials.db")}`,
      // The database file and its WAL, as bytes (latin1 keeps every byte).
      dump: () =>
        fs.readdirSync(dir).map((f) => fs.readFileSync(NodePath.join(dir, f)).toString("latin1")).join("\n")
    })
  )
}


/** The stores of every principal, over a given database and keys, in the test's scope. */
const storesOn = (
  backend: Backend,
  url: string,
  key: Redacted.Redacted<Uint8Array>,
  previous: ReadonlyArray<Redacted.Redacted<Uint8Array>> = []
) =>
  Effect.gen(function*() {
    const config = yield* SqlStoreConfig.make({ kind: backend.kind, url })
    const context = yield* Layer.build(
      Layer.mergeAll(
        SqlTokenStore.layerStores({ location: config.location }),
        Layer.effectContext(Effect.context<SqlClient.SqlClient>())
      ).pipe(
        Layer.provide(SecretBox.layer(key, previous)),
        Layer.provideMerge(SqlStoreConfig.layerClient(config))
      )
    )
    return {
      stores: Context.get(context, SqlTokenStore.SqlTokenStores),
      sql: Context.get(context, SqlClient.SqlClient)
    }
  }).pipe(Effect.orDie)

const rowsOf = (sql: SqlClient.SqlClient) =>
  sql<{ principal: string; provider: string; account: string; key_id: string; nonce: string; ciphertext: string }>`
    SELECT principal, provider, account, key_id, nonce, ciphertext FROM agent_auth_credentials ORDER BY principal, provider, account`.pipe(
    Effect.orDie
  )

const accessOf = (c: Option.Option<Domain.StoredCredential>) =>
  Option.match(c, {
    onNone: () => undefined,
    onSome: (c) => c._tag === "OAuthCredential" ? Redacted.value(c.tokens.accessToken) : Redacted.value(c.key)
  })

for (const backend of [postgres, sqlite]) {
  describe(`SqlTokenStore on ${backend.name}`, () => {
    it.scoped("at rest: the database holds no token, no key, no email — plain, base64 or hex", () =>
      Effect.gen(function*() {
        const db = yield* backend.database
        const key = newKey()
        const previousKey = newKey()
        const { stores } = yield* storesOn(backend, db.url, key, [previousKey])
        const store = yield* stores.forPrincipal("alice@example.com")
        yield* store.set(secretLogin())
        yield* store.set(TokenStoreSuite.apiKeyCredential("anthropic", "default", secrets.apiKey))
        // It is all there, through the store.
        expect(accessOf(yield* store.get({ provider: "openai", account: "ada" }))).toBe(secrets.access)
        const dump = db.dump()
        // The dump is real: it shows the table and the rows' plain key columns.
        expect(dump).toContain("agent_auth_credentials")
        expect(dump).toContain("alice@example.com")
        const leaks = [
          ...Object.values(secrets).flatMap((s) => forms(s).map((f) => ["secret", f] as const)),
          ...forms(Redacted.value(key)).map((f) => ["key", f] as const),
          ...forms(Redacted.value(previousKey)).map((f) => ["previous key", f] as const),
          ...forms("ada@example.com").map((f) => ["email", f] as const)
        ].filter(([, form]) => dump.includes(form))
        expect(leaks).toEqual([])
      }))

    it.scoped("rotation: rows under the previous key are read, and rewritten under the new key when next written", () =>
      Effect.gen(function*() {
        const db = yield* backend.database
        const oldKey = newKey()
        const newer = newKey()
        const before = yield* storesOn(backend, db.url, oldKey)
        const oldStore = yield* before.stores.forPrincipal("p")
        yield* oldStore.set(TokenStoreSuite.apiKeyCredential("openai", "written", "v1"))
        yield* oldStore.set(TokenStoreSuite.apiKeyCredential("openai", "untouched", "u1"))
        const oldId = SecretBox.keyIdOf(Redacted.value(oldKey))
        const newId = SecretBox.keyIdOf(Redacted.value(newer))
        expect((yield* rowsOf(before.sql)).map((r) => r.key_id)).toEqual([oldId, oldId])

        const after = yield* storesOn(backend, db.url, newer, [oldKey])
        const store = yield* after.stores.forPrincipal("p")
        expect(accessOf(yield* store.get({ provider: "openai", account: "written" }))).toBe("v1")
        expect(accessOf(yield* store.get({ provider: "openai", account: "untouched" }))).toBe("u1")
        // A read rewrites nothing.
        expect((yield* rowsOf(after.sql)).map((r) => r.key_id)).toEqual([oldId, oldId])
        yield* store.modify(
          { provider: "openai", account: "written" },
          () => Effect.succeed(Option.some(TokenStoreSuite.apiKeyCredential("openai", "written", "v2")))
        )
        const rows = yield* rowsOf(after.sql)
        expect(rows.map((r) => [r.account, r.key_id])).toEqual([["untouched", oldId], ["written", newId]])

        // Once the old key is dropped, the rewritten row still opens; the other names the variable.
        const only = yield* storesOn(backend, db.url, newer)
        const onlyStore = yield* only.stores.forPrincipal("p")
        expect(accessOf(yield* onlyStore.get({ provider: "openai", account: "written" }))).toBe("v2")
        const refused = yield* Effect.flip(onlyStore.get({ provider: "openai", account: "untouched" }))
        expect(refused).toBeInstanceOf(StoreKeyRejected)
        expect(refused.message).toContain("AGENT_AUTH_ENCRYPTION_KEY")
      }))

    it.scoped("a wrong key: every operation on the row fails with StoreKeyRejected naming the variable; nothing is overwritten", () =>
      Effect.gen(function*() {
        const db = yield* backend.database
        const right = newKey()
        const wrong = newKey()
        const good = yield* storesOn(backend, db.url, right)
        yield* (yield* good.stores.forPrincipal("p")).set(secretLogin())
        const rowsBefore = yield* rowsOf(good.sql)

        const bad = yield* storesOn(backend, db.url, wrong)
        const store = yield* bad.stores.forPrincipal("p")
        const key = { provider: "openai", account: "ada" }
        let called = false
        const attempts: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
          ["get", store.get(key)],
          ["list", store.list()],
          ["set", store.set(TokenStoreSuite.apiKeyCredential("openai", "ada", "overwrite"))],
          ["remove", store.remove(key)],
          ["modify", store.modify(key, () => Effect.sync(() => {
            called = true
            return Option.none()
          }))]
        ]
        for (const [what, attempt] of attempts) {
          const error = yield* Effect.flip(attempt)
          expect({ what, error: error instanceof StoreKeyRejected }).toEqual({ what, error: true })
          expect((error as StoreKeyRejected).variable).toBe("AGENT_AUTH_ENCRYPTION_KEY")
          expect((error as StoreKeyRejected).message).toContain("AGENT_AUTH_ENCRYPTION_KEY")
          expect((error as StoreKeyRejected).message).not.toContain(b64(right))
          expect((error as StoreKeyRejected).message).not.toContain(b64(wrong))
        }
        expect(called).toBe(false)
        expect(yield* rowsOf(bad.sql)).toEqual(rowsBefore)
        // The right key still reads it, unchanged.
        expect(accessOf(yield* (yield* good.stores.forPrincipal("p")).get(key))).toBe(secrets.access)
      }))

    it.scoped("principals: A can neither read, list, overwrite nor remove B's rows; a row moved to A does not open", () =>
      Effect.gen(function*() {
        const db = yield* backend.database
        const { sql, stores } = yield* storesOn(backend, db.url, newKey())
        const a = yield* stores.forPrincipal("A")
        const b = yield* stores.forPrincipal("B")
        const key = { provider: "openai", account: "shared-name" }
        yield* b.set(TokenStoreSuite.apiKeyCredential("openai", "shared-name", "b-secret"))
        expect(Option.isNone(yield* a.get(key))).toBe(true)
        expect(yield* a.list()).toEqual([])
        expect(yield* a.remove(key)).toBe(false)
        yield* a.set(TokenStoreSuite.apiKeyCredential("openai", "shared-name", "a-secret"))
        yield* a.modify(key, () => Effect.succeed(Option.some(TokenStoreSuite.apiKeyCredential("openai", "shared-name", "a-2"))))
        expect(accessOf(yield* b.get(key))).toBe("b-secret")
        expect(accessOf(yield* a.get(key))).toBe("a-2")
        expect(yield* a.remove(key)).toBe(true)
        expect(accessOf(yield* b.get(key))).toBe("b-secret")
        expect(a.location).toContain("principal A")

        // Someone with write access to the database copies B's sealed row into A's place:
        // the seal is bound to B's key, so it does not open as A's.
        yield* sql`INSERT INTO agent_auth_credentials (principal, provider, account, key_id, nonce, ciphertext, updated_at)
          SELECT ${"A"}, provider, account, key_id, nonce, ciphertext, updated_at FROM agent_auth_credentials WHERE principal = ${"B"}`.pipe(Effect.orDie)
        const moved = yield* Effect.flip(a.get(key))
        expect(moved).toBeInstanceOf(StoreKeyRejected)
        // Principals are checked: an empty one is refused.
        expect((yield* Effect.flip(stores.forPrincipal(""))).field).toBe("AGENT_AUTH_PRINCIPAL")
      }))

    it.scoped("revision: a write by another instance is seen by the next read, and only then", () =>
      Effect.gen(function*() {
        const db = yield* backend.database
        const key = newKey()
        const one = yield* (yield* storesOn(backend, db.url, key)).stores.forPrincipal("p")
        const two = yield* (yield* storesOn(backend, db.url, key)).stores.forPrincipal("p")
        const k = { provider: "openai", account: "a" }
        yield* one.set(TokenStoreSuite.apiKeyCredential("openai", "a", "1"))
        yield* two.get(k)
        const seen = two.revision()
        yield* two.get(k)
        expect(two.revision()).toBe(seen)
        yield* one.set(TokenStoreSuite.apiKeyCredential("openai", "a", "2"))
        expect(two.revision()).toBe(seen)
        expect(accessOf(yield* two.get(k))).toBe("2")
        expect(two.revision()).not.toBe(seen)
        const afterGet = two.revision()
        yield* one.remove(k)
        yield* two.list()
        expect(two.revision()).not.toBe(afterGet)
      }))
  })
}

const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
)

describe("SqlStoreConfig: an unreachable Postgres", () => {
  it.live("a closed port: StoreError \"cannot reach the database at HOST:PORT\", without the password", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const config = yield* SqlStoreConfig.make({ kind: "postgres", url: `postgres://u:pw-secret-123@127.0.0.1:${port}/db` })
      expect(config.location).toBe(`postgres 127.0.0.1:${port}/db`)
      const error = yield* Effect.flip(Layer.build(SqlStoreConfig.layerClient(config)).pipe(Effect.scoped))
      expect(error._tag).toBe("StoreError")
      expect(error.message).toContain(`cannot reach the database at 127.0.0.1:${port}`)
      expect(error.message).not.toContain("pw-secret-123")
    }))

  it.scopedLive("a server that never answers: the same error within the connect timeout", () =>
    Effect.gen(function*() {
      const sockets: Array<net.Socket> = []
      const silent = net.createServer((s) => void sockets.push(s))
      const port = yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<number>((resolve) => silent.listen(0, "127.0.0.1", () => resolve((silent.address() as net.AddressInfo).port)))),
        () => Effect.sync(() => {
          for (const s of sockets) s.destroy()
          silent.close()
        })
      )
      const config = yield* SqlStoreConfig.make({ kind: "postgres", url: `postgres://u@127.0.0.1:${port}/db`, connectTimeout: "1 second" })
      const started = Date.now()
      const error = yield* Effect.flip(Layer.build(SqlStoreConfig.layerClient(config)).pipe(Effect.scoped))
      const waited = Date.now() - started
      expect(error.message).toContain(`cannot reach the database at 127.0.0.1:${port}`)
      expect(waited).toBeGreaterThanOrEqual(900)
      // A wide margin: a loaded machine is slow, but not 5 times the timeout.
      expect(waited).toBeLessThan(5_000)
    }))
})
