/**
 * The Postgres of `scripts/with-postgres.sh`: its URL, fresh databases on it, and pg_dump.
 * Without AGENT_AUTH_TEST_DATABASE_URL these fail (a Postgres test must never pass by
 * skipping).
 */
import { PgClient } from "@effect/sql-pg"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Redacted, type Scope } from "effect"
import * as Crypto from "node:crypto"
import { execFileSync } from "node:child_process"
import * as NodePath from "node:path"

export const testDatabaseUrl = (): string => {
  const url = process.env.AGENT_AUTH_TEST_DATABASE_URL
  if (url === undefined || url === "") {
    throw new Error("AGENT_AUTH_TEST_DATABASE_URL is not set: run the tests through scripts/with-postgres.sh (pnpm test does)")
  }
  return url
}

const withDatabase = (url: string, database: string) => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Runs statements on the test server's maintenance database. */
const admin = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(withDatabase(testDatabaseUrl(), "postgres")), maxConnections: 1 })),
    Effect.orDie
  )

/** A new, empty database on the test server (its URL), dropped with the scope. */
export const freshDatabase: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `agent_auth_${Crypto.randomBytes(6).toString("hex")}`
    yield* admin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    return name
  }),
  (name) => admin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
).pipe(Effect.map((name) => withDatabase(testDatabaseUrl(), name)))

/** A layer's worth of `freshDatabase`. */
export const layerFreshDatabase = <A, E, R>(f: (url: string) => Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.unwrapScoped(Effect.map(freshDatabase, f))

/** `pg_dump` of a database, as text (data and schema). */
export const pgDump = (url: string): string => {
  const bin = process.env.AGENT_AUTH_TEST_PG_BIN
  if (bin === undefined || bin === "") throw new Error("AGENT_AUTH_TEST_PG_BIN is not set: run through scripts/with-postgres.sh")
  const u = new URL(url)
  const password = decodeURIComponent(u.password)
  u.password = ""
  return execFileSync(NodePath.join(bin, "pg_dump"), ["--no-owner", u.toString()], {
    encoding: "utf8",
    env: { ...process.env, PGPASSWORD: password }
  })
}
