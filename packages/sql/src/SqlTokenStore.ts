/**
 * `TokenStore` layers over SQL (`@effect/sql`): Postgres for many machines, SQLite for one.
 *
 * - Rows are keyed by principal (the end user), provider and account; a store reads and
 *   writes the rows of one principal only. `SqlTokenStores.forPrincipal` gives each
 *   request of a hosted service the store of its user, over one connection pool.
 * - The credential is sealed (AES-256-GCM, `SecretBox`) with the row's key as its
 *   authenticated context: the database holds no token, and a row moved to another
 *   principal does not open. A row sealed under a previous key is read, and sealed under
 *   the current key when it is next written; a row under a key this process does not have
 *   fails with `StoreKeyRejected`, and nothing is written over it.
 * - Every write (`set`, `remove`, `modify`) holds the key's lock for its whole
 *   read-modify-write: on Postgres a transaction-scoped advisory lock (it covers a row that
 *   does not exist yet, and is released with the transaction or the connection, so a
 *   worker that dies mid-refresh frees it); on SQLite `BEGIN IMMEDIATE`, waiting up to
 *   `lockTimeout` for another process. So one worker on any machine refreshes, and the
 *   others read what it stored.
 * - Tables are created by `@effect/sql`'s Migrator on first use (table
 *   `agent_auth_migrations`).
 */
import {
  AuthConfig,
  ConfigInvalid,
  Domain,
  StoreCorrupted,
  StoreError,
  StoreLocked,
  TokenStore
} from "@agent-auth/core"
import type { TokenStoreError } from "@agent-auth/core"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, DateTime, Duration, Effect, Either, Layer, Option, Schema } from "effect"
import { isBusy } from "./internal/busyWait.js"
import { keyedLock } from "./internal/keyedLock.js"
import { credentialsTable, migrate } from "./internal/migrations.js"
import * as SecretBox from "./SecretBox.js"
import * as SqlStoreConfig from "./SqlStoreConfig.js"

/** A store of one principal. */
export interface SqlTokenStore extends TokenStore.TokenStoreShape {
  readonly principal: string
}

export interface SqlTokenStoresShape {
  /** Where the database is, for people (`postgres 127.0.0.1:5432/db`). */
  readonly location: string
  /** The store of one principal: it reads and writes that principal's rows only. */
  readonly forPrincipal: (principal: string) => Effect.Effect<SqlTokenStore, ConfigInvalid>
  /** Every principal with a stored credential (of `provider`, when given), in order. */
  readonly principals: (provider?: string) => Effect.Effect<ReadonlyArray<string>, TokenStoreError>
}

/** The stores of every principal over one database. */
export class SqlTokenStores extends Context.Tag("@agent-auth/sql/SqlTokenStores")<SqlTokenStores, SqlTokenStoresShape>() {}

export interface Options {
  /** Where the database is, for people and errors. */
  readonly location: string
  /** How long a write waits for another worker's lock; default 90 s (longer than a token request). */
  readonly lockTimeout?: Duration.DurationInput | undefined
}

interface Row {
  readonly provider: string
  readonly account: string
  readonly key_id: string
  readonly nonce: string
  readonly ciphertext: string
}

const CredentialJson = Schema.parseJson(Domain.StoredCredential)
const encodeCredential = Schema.encodeEither(CredentialJson)
const decodeCredential = Schema.decodeUnknownEither(CredentialJson)

/** What a sealed credential is bound to: a row's key. */
const sealContext = (principal: string, key: Domain.CredentialKey) =>
  JSON.stringify(["agent-auth credential v1", principal, key.provider, key.account])

/**
 * The stores of every principal, over the `SqlClient` in context (migrated first).
 * `SqlStoreConfig.SqlReader`, when present, serves reads outside a write (SQLite: a second
 * connection, so a read does not wait for a write's token request in this process).
 */
export const makeStores = (options: Options): Effect.Effect<
  SqlTokenStoresShape,
  StoreError,
  SqlClient.SqlClient | SecretBox.SecretBox
> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const reader = Option.getOrElse(yield* Effect.serviceOption(SqlStoreConfig.SqlReader), () => sql)
    const box = yield* SecretBox.SecretBox
    const location = options.location
    const lockTimeout = Duration.decode(options.lockTimeout ?? SqlStoreConfig.defaults.lockTimeout)
    yield* migrate(location)
    // Fibers of this process queue here, each key on its own, before they take a database
    // connection to wait on the database's lock.
    const inProcess = keyedLock()

    const fromSql = (error: SqlError): TokenStoreError => {
      const cause = error.cause as { code?: unknown } | null
      if ((typeof cause === "object" && cause !== null && cause.code === "55P03") || isBusy(cause)) {
        return new StoreLocked({ path: location, waitedMs: Duration.toMillis(lockTimeout) })
      }
      return new StoreError({ path: location, reason: `the database failed (${describe(error)})` })
    }

    const isSqlError = (e: unknown): e is SqlError =>
      typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "SqlError"

    /** `body` under the key's lock: in this process, then in the database. */
    const locked = (principal: string, key: Domain.CredentialKey) => <A, E, R>(body: Effect.Effect<A, E, R>) => {
      const name = JSON.stringify([principal, key.provider, key.account])
      const inDatabase = sql.onDialectOrElse({
        pg: () =>
          sql.withTransaction(
            // lock_timeout bounds the wait for a worker that holds the lock (and is alive).
            sql.unsafe(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(Duration.toMillis(lockTimeout)))}`).pipe(
              Effect.zipRight(sql`SELECT pg_advisory_xact_lock(hashtextextended(${name}, 0))`),
              Effect.zipRight(body)
            )
          ),
        // BEGIN IMMEDIATE (libsql's "write" transaction), retried while another process writes.
        orElse: () => sql.withTransaction(body)
      })
      return inProcess(name)(inDatabase.pipe(
        // @effect/sql makes a failed COMMIT or ROLLBACK a defect; it is the database's answer
        // (a lock still held at the timeout, a full disk), reported like any other.
        Effect.catchSomeDefect((defect) => isSqlError(defect) ? Option.some(Effect.fail(defect)) : Option.none())
      ))
    }

    const make = (principal: string): SqlTokenStore => {
      let revision = 0
      /** The nonce of each row as this store last saw it (null: absent). */
      const seen = new Map<string, string | null>()
      const observe = (key: Domain.CredentialKey, nonce: string | null) => {
        const k = Domain.keyString(key)
        if ((seen.get(k) ?? null) !== nonce) revision++
        seen.set(k, nonce)
      }
      const wrote = (key: Domain.CredentialKey, nonce: string | null) => {
        revision++
        seen.set(Domain.keyString(key), nonce)
      }

      const open = (row: Row): Effect.Effect<Domain.StoredCredential, TokenStoreError> => {
        const key = { provider: row.provider, account: row.account }
        return Effect.flatMap(
          box.open({ keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext }, sealContext(principal, key)),
          (json) =>
            Either.match(decodeCredential(json), {
              onLeft: () =>
                Effect.fail(
                  new StoreCorrupted({
                    path: location,
                    reason: `the row of ${Domain.keyString(key)} (principal ${principal}) does not hold a credential this version reads`
                  })
                ),
              onRight: Effect.succeed
            })
        )
      }

      const selectRow = (client: SqlClient.SqlClient, key: Domain.CredentialKey) =>
        Effect.map(
          client<Row>`SELECT provider, account, key_id, nonce, ciphertext FROM ${client(credentialsTable)}
            WHERE principal = ${principal} AND provider = ${key.provider} AND account = ${key.account}`,
          (rows) => Option.fromNullable(rows[0])
        )

      /** The current row under the lock, refused when its key is unknown (it is then never overwritten). */
      const current = (key: Domain.CredentialKey) =>
        Effect.flatMap(selectRow(sql, key), (row) =>
          Option.match(row, {
            onNone: () => Effect.succeed({ row, credential: Option.none<Domain.StoredCredential>() }),
            onSome: (r) => Effect.map(open(r), (c) => ({ row, credential: Option.some(c) }))
          }))

      const write = (credential: Domain.StoredCredential) =>
        Effect.gen(function*() {
          const key = Domain.credentialKey(credential)
          const json = yield* Either.mapLeft(
            encodeCredential(credential),
            () => new StoreError({ path: location, reason: `the credential of ${Domain.keyString(key)} does not encode` })
          )
          const sealed = box.seal(json, sealContext(principal, key))
          const now = DateTime.formatIso(yield* DateTime.now)
          yield* sql`INSERT INTO ${sql(credentialsTable)}
              (principal, provider, account, key_id, nonce, ciphertext, updated_at)
            VALUES (${principal}, ${key.provider}, ${key.account}, ${sealed.keyId}, ${sealed.nonce}, ${sealed.ciphertext}, ${now})
            ON CONFLICT (principal, provider, account) DO UPDATE SET
              key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`
          return sealed.nonce
        })

      const deleteRow = (key: Domain.CredentialKey) =>
        sql`DELETE FROM ${sql(credentialsTable)}
          WHERE principal = ${principal} AND provider = ${key.provider} AND account = ${key.account}`

      /** Store errors as they are; SQL errors as store errors. */
      const storeErrors = <A, E, R>(effect: Effect.Effect<A, E | SqlError, R>): Effect.Effect<A, Exclude<E, SqlError> | TokenStoreError, R> =>
        Effect.catchIf(effect, isSqlError, (e) => Effect.fail(fromSql(e))) as Effect.Effect<A, Exclude<E, SqlError> | TokenStoreError, R>

      return {
        principal,
        location: `${location}, principal ${principal}`,
        revision: () => revision,
        get: (key) =>
          storeErrors(Effect.gen(function*() {
            const row = yield* selectRow(reader, key)
            observe(key, Option.match(row, { onNone: () => null, onSome: (r) => r.nonce }))
            return Option.isSome(row) ? Option.some(yield* open(row.value)) : Option.none()
          })),
        list: (provider) =>
          storeErrors(Effect.gen(function*() {
            const rows = yield* (provider === undefined
              ? reader<Row>`SELECT provider, account, key_id, nonce, ciphertext FROM ${reader(credentialsTable)}
                  WHERE principal = ${principal}`
              : reader<Row>`SELECT provider, account, key_id, nonce, ciphertext FROM ${reader(credentialsTable)}
                  WHERE principal = ${principal} AND provider = ${provider}`)
            const present = new Set(rows.map((r) => Domain.keyString(r)))
            for (const k of seen.keys()) {
              const [p, ...rest] = k.split("/")
              if (!present.has(k) && (provider === undefined || p === provider)) observe({ provider: p!, account: rest.join("/") }, null)
            }
            for (const r of rows) observe(r, r.nonce)
            const credentials = yield* Effect.forEach(rows, open)
            return [...credentials].sort(TokenStore.compareKeys)
          })),
        set: (credential) =>
          storeErrors(locked(principal, Domain.credentialKey(credential))(
            Effect.gen(function*() {
              const key = Domain.credentialKey(credential)
              // An unreadable row (wrong key) fails here: it is not overwritten.
              yield* current(key)
              wrote(key, yield* write(credential))
            })
          )),
        remove: (key) =>
          storeErrors(locked(principal, key)(
            Effect.gen(function*() {
              const { row } = yield* current(key)
              if (Option.isNone(row)) {
                observe(key, null)
                return false
              }
              yield* deleteRow(key)
              wrote(key, null)
              return true
            })
          )),
        modify: (key, f) =>
          storeErrors(locked(principal, key)(
            Effect.gen(function*() {
              const { credential, row } = yield* current(key)
              observe(key, Option.match(row, { onNone: () => null, onSome: (r) => r.nonce }))
              const next = yield* f(credential)
              if (Option.isSome(next)) {
                if (Option.isSome(credential) && next.value === credential.value) return next
                const written = Domain.credentialKey(next.value)
                if (written.provider !== key.provider || written.account !== key.account) {
                  return yield* new StoreError({
                    path: location,
                    reason: `modify of ${Domain.keyString(key)} returned the credential of ${Domain.keyString(written)}`
                  })
                }
                wrote(key, yield* write(next.value))
              } else if (Option.isSome(row)) {
                yield* deleteRow(key)
                wrote(key, null)
              }
              return next
            })
          ))
      }
    }

    return {
      location,
      forPrincipal: (principal) => Effect.map(SqlStoreConfig.checkPrincipal(principal), make),
      principals: (provider) =>
        Effect.map(
          provider === undefined
            ? reader<{ principal: string }>`SELECT DISTINCT principal FROM ${reader(credentialsTable)}`
            : reader<{ principal: string }>`SELECT DISTINCT principal FROM ${reader(credentialsTable)} WHERE provider = ${provider}`,
          (rows) => rows.map((r) => r.principal).sort()
        ).pipe(Effect.mapError(fromSql))
    }
  })

/** What a SQL error says, without values (it never quotes parameters). */
const describe = (error: SqlError): string => {
  const cause = error.cause as { code?: unknown; message?: unknown } | null
  if (typeof cause === "object" && cause !== null && typeof cause.code === "string") return `${error.message}: ${cause.code}`
  return error.message
}

/** The stores of every principal, over the `SqlClient` and `SecretBox` in context. */
export const layerStores = (options: Options): Layer.Layer<SqlTokenStores, StoreError, SqlClient.SqlClient | SecretBox.SecretBox> =>
  Layer.effect(SqlTokenStores, makeStores(options))

/** The store of one principal, from `SqlTokenStores`. */
export const forPrincipal = (principal: string): Effect.Effect<SqlTokenStore, ConfigInvalid, SqlTokenStores> =>
  Effect.flatMap(SqlTokenStores, (stores) => stores.forPrincipal(principal))

/** `TokenStore` as the store of one principal (per request, in a hosted service). */
export const layerPrincipal = (principal: string): Layer.Layer<TokenStore.TokenStore, ConfigInvalid, SqlTokenStores> =>
  Layer.effect(TokenStore.TokenStore, forPrincipal(principal))

/** `TokenStore` for `config.principal`, and `SqlTokenStores` for every other, with the database connection. */
export const layerConfig = (
  config: SqlStoreConfig.SqlStoreConfig
): Layer.Layer<TokenStore.TokenStore | SqlTokenStores, StoreError | ConfigInvalid, SecretBox.SecretBox> =>
  Layer.provideMerge(
    layerPrincipal(config.principal),
    layerStores({ location: config.location, lockTimeout: config.lockTimeout })
  ).pipe(Layer.provide(SqlStoreConfig.layerClient(config)))

/**
 * The store `AGENT_AUTH_STORE=postgres|sqlite` names, from the environment: the database
 * (`AGENT_AUTH_DATABASE_URL`), the key (`AGENT_AUTH_ENCRYPTION_KEY`, and
 * `AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS`), the principal (`AGENT_AUTH_PRINCIPAL`). What is
 * missing fails with `ConfigInvalid` naming the variable, before any connection.
 */
export const layerEnv = (
  kind: SqlStoreConfig.Kind
): Layer.Layer<TokenStore.TokenStore | SqlTokenStores, StoreError | ConfigInvalid, AuthConfig.AuthConfig> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const settings = yield* AuthConfig.AuthConfig
    const config = yield* SqlStoreConfig.fromEnv(kind, { home: settings.home, lockTimeout: settings.lockTimeout })
    const box = yield* SecretBox.fromEnv
    return layerConfig(config).pipe(Layer.provide(Layer.succeed(SecretBox.SecretBox, box)))
  }))
