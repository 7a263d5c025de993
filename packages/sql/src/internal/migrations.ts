/**
 * The tables, created and migrated by `@effect/sql`'s Migrator on first use, recorded in
 * a migrations table of their own (`agent_auth_migrations`), so an application's own
 * migrations (the hosted server's, the host's) never collide with ours.
 */
import { StoreError } from "@agent-auth/core"
import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as SqlMigrations from "../SqlMigrations.js"

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

/** Runs the token store's migrations (see SqlMigrations). */
export const migrate = (location: string): Effect.Effect<void, StoreError, SqlClient.SqlClient> =>
  SqlMigrations.run({ loader: migrations, table: migrationsTable, location, what: "its tables" })
