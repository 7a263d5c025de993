/**
 * `@effect/sql`'s Migrator, safe to start on many workers at once, with its own migrations
 * table per user (agent-auth's token store, the hosted server's pending logins, the host
 * application's own), so no two sets of migrations ever collide.
 */
import { StoreError } from "@agent-auth/core"
import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"

export interface Options {
  /** The migrations, e.g. `Migrator.fromRecord({ "1_…": effect })`. */
  readonly loader: Migrator.Loader<SqlClient.SqlClient>
  /** The table that records which have run. */
  readonly table: string
  /** Where the database is, for the error (a URL without its password, or a file). */
  readonly location: string
  /** What the migrations create, for the error: "its tables", "the pending-login table". */
  readonly what: string
}

/**
 * Runs the migrations. On Postgres the Migrator's own first step (create its table when a
 * lookup fails) races when several workers start at once, so that table is created first,
 * under a transaction-scoped advisory lock.
 */
export const run = (options: Options): Effect.Effect<void, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.onDialectOrElse({
      pg: () =>
        sql.withTransaction(Effect.zipRight(
          sql`SELECT pg_advisory_xact_lock(hashtextextended(${options.table}, 0))`,
          sql`CREATE TABLE IF NOT EXISTS ${sql(options.table)} (
            migration_id integer primary key,
            created_at timestamp with time zone not null default now(),
            name text not null
          )`
        )),
      orElse: () => Effect.void
    })
    yield* Migrator.make({})({ loader: options.loader, table: options.table })
  }).pipe(
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    Effect.mapError((e) =>
      new StoreError({
        path: options.location,
        reason: `cannot create or migrate ${options.what} (${(e as { message?: unknown })?.message ?? String(e)})`
      })
    )
  )
