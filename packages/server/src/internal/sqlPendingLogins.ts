/**
 * Pending logins in SQL (Postgres or SQLite through `@effect/sql`), so every replica of a
 * hosted service completes a login any other started.
 *
 * - The row is found by the SHA-256 of its state, never the state itself: a dump of the
 *   table holds nothing a callback could be forged from.
 * - What `PkceFlow.complete` needs (PKCE verifier, nonce, redirect URI) is one document
 *   sealed with the SQL store's `SecretBox`; the sealing context binds it to its state,
 *   principal, provider and expiry, so a row edited to name another principal no longer opens.
 * - `take` is one `DELETE … RETURNING`: of two replicas taking one state, the database
 *   gives the row to one, and the other finds nothing.
 * - Tables of its own, migrated by `@effect/sql`'s Migrator in a migrations table of its
 *   own, beside the SQL token store's.
 */
import type { TokenStoreError } from "@agent-auth/core"
import { SignInRefused, StoreError } from "@agent-auth/core"
import { SecretBox, SqlMigrations } from "@agent-auth/sql"
import { Migrator, SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Either, Redacted, Schema } from "effect"
import * as Crypto from "node:crypto"
import type { PendingLogin, PendingLoginsShape } from "../PendingLogins.js"
import { checkExpiry } from "../PendingLogins.js"

export const migrationsTable = "agent_auth_server_migrations"
export const pendingTable = "agent_auth_pending_logins"

const createPending = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE ${sql(pendingTable)} (
    state_hash TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    provider TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL
  )`
  yield* sql`CREATE INDEX ${sql(`${pendingTable}_expires_at`)} ON ${sql(pendingTable)} (expires_at)`
})

const migrations = Migrator.fromRecord({ "1_pending_logins": createPending })

/** Runs the migrations (its own migrations table; replicas may start together). */
const migrate = (location: string) =>
  SqlMigrations.run({ loader: migrations, table: migrationsTable, location, what: "the pending-login table" })

/** The sealed part of a row. */
const Secrets = Schema.parseJson(Schema.Struct({
  authorizationUrl: Schema.String,
  redirectUri: Schema.String,
  state: Schema.String,
  codeVerifier: Schema.String,
  nonce: Schema.optional(Schema.String)
}))

interface Row {
  readonly principal: string
  readonly provider: string
  readonly expires_at: string | number | bigint
  readonly key_id: string
  readonly nonce: string
  readonly ciphertext: string
}

const hashState = (state: string) => Crypto.createHash("sha256").update(state, "utf8").digest("hex")

const sealContext = (stateHash: string, principal: string, provider: string, expiresAt: number) =>
  JSON.stringify(["agent-auth pending login v1", stateHash, principal, provider, expiresAt])

export const make = (options: { readonly location: string }): Effect.Effect<
  PendingLoginsShape,
  StoreError,
  SqlClient.SqlClient | SecretBox.SecretBox
> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const box = yield* SecretBox.SecretBox
    const location = options.location
    yield* migrate(location)

    /** SQL errors name the failing statement's kind, never its values. */
    const storeErrors = <A, E>(effect: Effect.Effect<A, E | SqlError>): Effect.Effect<A, Exclude<E, SqlError> | StoreError> =>
      Effect.catchIf(
        effect,
        (e): e is SqlError => typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "SqlError",
        (e) => Effect.fail(new StoreError({ path: location, reason: `the database failed (${e.message})` }))
      ) as Effect.Effect<A, Exclude<E, SqlError> | StoreError>

    const save = (pending: PendingLogin) =>
      storeErrors(Effect.gen(function*() {
        const { login, principal, expiresAt } = pending
        const stateHash = hashState(login.state)
        const sealed = box.seal(
          Schema.encodeSync(Secrets)({
            authorizationUrl: login.authorizationUrl,
            redirectUri: login.redirectUri,
            state: login.state,
            codeVerifier: Redacted.value(login.codeVerifier),
            ...(login.nonce === undefined ? {} : { nonce: login.nonce })
          }),
          sealContext(stateHash, principal, login.provider, expiresAt)
        )
        // Abandoned logins would otherwise stay forever.
        yield* sql`DELETE FROM ${sql(pendingTable)} WHERE expires_at <= ${yield* Clock.currentTimeMillis}`
        yield* sql`INSERT INTO ${sql(pendingTable)} (state_hash, principal, provider, expires_at, key_id, nonce, ciphertext)
          VALUES (${stateHash}, ${principal}, ${login.provider}, ${expiresAt}, ${sealed.keyId}, ${sealed.nonce}, ${sealed.ciphertext})`
      }))

    const open = (stateHash: string, row: Row): Effect.Effect<PendingLogin, TokenStoreError> => {
      const expiresAt = Number(row.expires_at)
      return Either.flatMap(
        box.open({ keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext }, sealContext(stateHash, row.principal, row.provider, expiresAt)),
        (json) =>
          Either.mapLeft(
            Schema.decodeUnknownEither(Secrets)(json),
            () => new StoreError({ path: location, reason: "a pending login does not hold what this version reads" })
          )
      ).pipe(
        Either.map((s): PendingLogin => ({
          principal: row.principal,
          expiresAt,
          login: {
            provider: row.provider,
            authorizationUrl: s.authorizationUrl,
            redirectUri: s.redirectUri,
            state: s.state,
            codeVerifier: Redacted.make(s.codeVerifier),
            nonce: s.nonce
          }
        }))
      )
    }

    const take = (state: string) =>
      Effect.gen(function*() {
        const stateHash = hashState(state)
        const rows = yield* storeErrors(
          sql<Row>`DELETE FROM ${sql(pendingTable)} WHERE state_hash = ${stateHash}
            RETURNING principal, provider, expires_at, key_id, nonce, ciphertext`
        )
        const row = rows[0]
        if (row === undefined) return yield* new SignInRefused({ reason: "unknown" })
        const pending = yield* open(stateHash, row)
        return yield* checkExpiry(pending, yield* Clock.currentTimeMillis)
      })

    return { location, save, take }
  })
