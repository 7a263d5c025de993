/**
 * The tables, created and migrated by `@effect/sql`'s Migrator on first use, recorded in
 * a migrations table of their own (`agent_auth_migrations`), so an application's own
 * migrations (the hosted server's, the host's) never collide with ours.
 */
import { StoreError } from "@agent-auth/core"
import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"

export const migrationsTable = "agent_auth_migrations"
export const credentialsTable = "agent_auth_credentials"

/**
 * One row per principal, provider and account. The credential itself (tokens, claims,
 * dates) is one sealed JSON document: `key_id`, `nonce`, `ciphertext` (see SecretBox); the
 * key columns are plain so rows can be found and locked. `nonce` is new on every write,
 * so it also tells a reader whether a row changed since it last looked.
 */
const createCredentials = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE ${sql(credentialsTable)} (
    principal TEXT NOT NULL,
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (principal, provider, account)
  )`
})

export const migrations = Migrator.fromRecord({
  "1_credentials": createCredentials
})

/**
 * Runs the migrations. On Postgres the Migrator's own first step (create its table when a
 * lookup fails) races when several workers start at once, so the table is created first,
 * under a transaction-scoped advisory lock.
 */
export const migrate = (location: string): Effect.Effect<void, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.onDialectOrElse({
      pg: () =>
        sql.withTransaction(Effect.zipRight(
          sql`SELECT pg_advisory_xact_lock(hashtextextended(${migrationsTable}, 0))`,
          sql`CREATE TABLE IF NOT EXISTS ${sql(migrationsTable)} (
            migration_id integer primary key,
            created_at timestamp with time zone not null default now(),
            name text not null
          )`
        )),
      orElse: () => Effect.void
    })
    yield* Migrator.make({})({ loader: migrations, table: migrationsTable })
  }).pipe(
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    Effect.mapError((e) =>
      new StoreError({
        path: location,
        reason: `cannot create or migrate its tables (${(e as { message?: unknown })?.message ?? String(e)})`
      })
    )
  )
