/**
 * Where a SQL store's database is, and the `SqlClient` layer that connects to it:
 *
 * - `AGENT_AUTH_STORE=postgres` with `AGENT_AUTH_DATABASE_URL=postgres://…` (required),
 *   through `@effect/sql-pg`;
 * - `AGENT_AUTH_STORE=sqlite` with `AGENT_AUTH_DATABASE_URL=file:…` (default
 *   `$AGENT_AUTH_HOME/credentials.db`), through `@effect/sql-libsql` (no native build);
 * - `AGENT_AUTH_PRINCIPAL` (default `default`): whose rows this process reads and writes;
 * - `AGENT_AUTH_DATABASE_POOL` (default 10): the most connections one process opens.
 *
 * Also the piece `@agent-auth/server` connects its pending-login table with.
 */
import { ConfigInvalid, StoreError } from "@agent-auth/core"
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { Config, Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { busyWaiting } from "./internal/busyWait.js"

export type Kind = "postgres" | "sqlite"

/**
 * A second client for reads outside a write, where the main one serialises everything
 * (SQLite: libsql runs one statement or transaction at a time per client, so without it a
 * read would wait for a write's token request). Optional: a store reads through
 * `SqlClient` when there is none (Postgres: the pool serves both).
 */
export class SqlReader extends Context.Tag("@agent-auth/sql/SqlReader")<SqlReader, SqlClient.SqlClient>() {}

export const urlVariable = "AGENT_AUTH_DATABASE_URL"
export const principalVariable = "AGENT_AUTH_PRINCIPAL"
export const poolVariable = "AGENT_AUTH_DATABASE_POOL"

export interface SqlStoreConfig {
  readonly kind: Kind
  /** `postgres://…` or `file:…`; may hold a password, hence Redacted. */
  readonly url: Redacted.Redacted<string>
  /** For people, without the password: `postgres 127.0.0.1:5432/db`, `sqlite /home/me/.agent-auth/credentials.db`. */
  readonly location: string
  /** `HOST:PORT` of a Postgres server, for "cannot reach" messages; the file for SQLite. */
  readonly address: string
  /** The end user whose rows a store made from this config reads and writes. */
  readonly principal: string
  /** The most connections this process opens (Postgres). */
  readonly maxConnections: number
  /** How long connecting may take before the database counts as unreachable. */
  readonly connectTimeout: Duration.Duration
  /** How long a write waits for another worker's lock (longer than a token request). */
  readonly lockTimeout: Duration.Duration
}

export const defaults = {
  principal: "default",
  maxConnections: 10,
  connectTimeout: Duration.seconds(5),
  lockTimeout: Duration.seconds(90)
} as const

const invalid = (field: string, reason: string) => new ConfigInvalid({ source: "environment", field, reason })

/** A principal: 1 to 256 characters, none of them a control character. */
export const checkPrincipal = (principal: string): Effect.Effect<string, ConfigInvalid> =>
  principal.length > 0 && principal.length <= 256 && !/[\u0000-\u001f\u007f]/.test(principal)
    ? Effect.succeed(principal)
    : Effect.fail(invalid(principalVariable, "a principal is 1 to 256 characters, no control characters"))

/** The config from values; the URL is checked and its password never appears in `location`. */
export const make = (options: {
  readonly kind: Kind
  readonly url: Redacted.Redacted<string> | string
  readonly principal?: string | undefined
  readonly maxConnections?: number | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
  readonly lockTimeout?: Duration.DurationInput | undefined
}): Effect.Effect<SqlStoreConfig, ConfigInvalid> =>
  Effect.gen(function*() {
    const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
    const principal = yield* checkPrincipal(options.principal ?? defaults.principal)
    const where = yield* (options.kind === "postgres" ? postgresAddress(Redacted.value(url)) : sqliteFile(Redacted.value(url)))
    return {
      kind: options.kind,
      url: options.kind === "sqlite" ? Redacted.make(`file:${where.address}`) : url,
      location: where.location,
      address: where.address,
      principal,
      maxConnections: options.maxConnections ?? defaults.maxConnections,
      connectTimeout: Duration.decode(options.connectTimeout ?? defaults.connectTimeout),
      lockTimeout: Duration.decode(options.lockTimeout ?? defaults.lockTimeout)
    }
  })

const postgresAddress = (text: string) => {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    // Never quote it: it may hold a password.
    return Effect.fail(invalid(urlVariable, "not a URL; a Postgres store needs postgres://USER:PASSWORD@HOST:PORT/DATABASE"))
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    return Effect.fail(invalid(urlVariable, `a Postgres store needs a postgres:// URL, not ${url.protocol}`))
  }
  const host = url.searchParams.get("host") ?? url.hostname
  const address = `${host || "localhost"}:${url.port || "5432"}`
  const database = decodeURIComponent(url.pathname.replace(/^\//, "")) || decodeURIComponent(url.username) || "postgres"
  return Effect.succeed({ address, location: `postgres ${address}/${database}` })
}

const sqliteFile = (text: string) => {
  const path = text.startsWith("file:") ? text.slice("file:".length).replace(/^\/\/(?=\/)/, "") : text
  if (path.length === 0 || /^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return Effect.fail(invalid(urlVariable, "a SQLite store needs file:/path/to/credentials.db (or a path)"))
  }
  const absolute = NodePath.resolve(path)
  return Effect.succeed({ address: absolute, location: `sqlite ${absolute}` })
}

/** The SQLite file in a home folder. */
export const defaultSqlitePath = (home: string): string => NodePath.join(home, "credentials.db")

/**
 * The config from the environment, for the store kind `AGENT_AUTH_STORE` chose. Postgres
 * needs `AGENT_AUTH_DATABASE_URL`; SQLite defaults to `credentials.db` in `home`.
 */
export const fromEnv = (
  kind: Kind,
  options: { readonly home: string; readonly lockTimeout?: Duration.DurationInput | undefined }
): Effect.Effect<SqlStoreConfig, ConfigInvalid> =>
  Effect.gen(function*() {
    const env = yield* Effect.all({
      url: Config.option(Config.redacted(urlVariable)),
      principal: Config.option(Config.string(principalVariable)),
      pool: Config.option(Config.integer(poolVariable))
    }).pipe(Effect.mapError((e) => invalid(poolVariable, `not a whole number (${e._op === "InvalidData" ? "invalid" : "unreadable"})`)))
    const url = Option.filter(env.url, (u) => Redacted.value(u).trim().length > 0)
    if (kind === "postgres" && Option.isNone(url)) {
      return yield* invalid(urlVariable, "not set; AGENT_AUTH_STORE=postgres needs postgres://USER:PASSWORD@HOST:PORT/DATABASE")
    }
    const pool = Option.getOrUndefined(env.pool)
    if (pool !== undefined && (pool < 1 || pool > 1000)) return yield* invalid(poolVariable, "must be between 1 and 1000")
    return yield* make({
      kind,
      url: Option.getOrElse(url, () => Redacted.make(`file:${defaultSqlitePath(options.home)}`)),
      principal: Option.getOrUndefined(Option.filter(env.principal, (p) => p.length > 0)),
      maxConnections: pool,
      lockTimeout: options.lockTimeout
    })
  })

/** Why a connection failed, in words that never hold the URL: a code, or the server's message. */
const causeText = (cause: unknown): string => {
  const e = cause as { code?: unknown; message?: unknown; cause?: unknown } | null
  if (typeof e !== "object" || e === null) return "unknown error"
  if (typeof e.code === "string" && /^E[A-Z]+$/.test(e.code)) return e.code
  if (typeof e.message === "string" && /timed? ?out/i.test(e.message)) return "timed out"
  if (e.cause !== undefined) return causeText(e.cause)
  return typeof e.code === "string" ? e.code : "refused"
}

/** Errors that mean nothing answered (or not in time), as opposed to a server that refused us. */
const unreachable = (text: string) => /^E(CONNREFUSED|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN|TIMEDOUT|CONNRESET)$|timed out/.test(text)

/**
 * A driver, loaded when a store of its kind is built: a program on Postgres never loads
 * libsql (nor its native binding), one on SQLite never loads pg.
 */
const load = <A>(config: SqlStoreConfig, name: string, f: () => Promise<A>): Effect.Effect<A, StoreError> =>
  Effect.tryPromise({
    try: f,
    catch: () => new StoreError({ path: config.location, reason: `its driver ${name} cannot be loaded; install it beside @agent-auth/sql` })
  })

/** Postgres through `pg`, at most `maxConnections` connections; fails with "cannot reach the database at HOST:PORT". */
const layerPostgres = (config: SqlStoreConfig): Layer.Layer<SqlClient.SqlClient, StoreError> =>
  Layer.unwrapEffect(Effect.map(load(config, "@effect/sql-pg", () => import("@effect/sql-pg")), ({ PgClient }) => layerPg(PgClient, config)))

const layerPg = (
  PgClient: typeof import("@effect/sql-pg").PgClient,
  config: SqlStoreConfig
): Layer.Layer<SqlClient.SqlClient, StoreError> =>
  PgClient.layer({
    url: config.url,
    maxConnections: config.maxConnections,
    connectTimeout: config.connectTimeout,
    applicationName: "agent-auth"
  }).pipe(
    Layer.catchAll((error) => {
      const text = causeText(error.cause)
      return Layer.fail(
        new StoreError({
          path: config.location,
          reason: unreachable(text)
            ? `cannot reach the database at ${config.address} (${text})`
            : `the database at ${config.address} refused the connection (${text})`
        })
      )
    })
  )

/**
 * SQLite through libsql, in WAL mode (readers never wait for a writer), the file created
 * 0600 in a 0700 folder; a writer and a reader connection (`SqlReader`).
 */
const layerSqlite = (config: SqlStoreConfig): Layer.Layer<SqlClient.SqlClient | SqlReader, StoreError> =>
  Layer.scopedContext(Effect.gen(function*() {
    const path = config.address
    const fail = (reason: string) => new StoreError({ path: config.location, reason })
    yield* Effect.try({
      try: () => {
        NodeFs.mkdirSync(NodePath.dirname(path), { recursive: true, mode: 0o700 })
        // SQLite creates its files with the process's umask; the WAL and SHM files copy the database file's mode.
        NodeFs.closeSync(NodeFs.openSync(path, NodeFs.constants.O_CREAT | NodeFs.constants.O_RDWR, 0o600))
      },
      catch: (e) => fail(`cannot create the database file (${(e as NodeJS.ErrnoException).code ?? "error"})`)
    })
    const { LibsqlClient } = yield* load(config, "@effect/sql-libsql", () => import("@effect/sql-libsql"))
    const { createClient } = yield* load(config, "@libsql/client", () => import("@libsql/client"))
    const timeoutMs = Duration.toMillis(config.lockTimeout)
    const open = Effect.acquireRelease(
      Effect.try({
        try: () => busyWaiting(() => createClient({ url: Redacted.value(config.url) }), timeoutMs),
        catch: (e) => fail(`cannot open the database (${causeText(e)})`)
      }),
      (client) => Effect.sync(() => client.close())
    )
    const writer = yield* open
    const reader = yield* open
    yield* Effect.tryPromise({
      try: () => writer.execute("PRAGMA journal_mode = WAL"),
      catch: (e) => fail(`cannot open the database (${causeText(e)})`)
    })
    const client = yield* LibsqlClient.make({ liveClient: writer })
    const readClient = yield* LibsqlClient.make({ liveClient: reader })
    return Context.make(SqlClient.SqlClient, client).pipe(Context.add(SqlReader, readClient as SqlClient.SqlClient))
  })).pipe(Layer.provide(Reactivity.layer))

/** The `SqlClient` for a config. */
export const layerClient = (config: SqlStoreConfig): Layer.Layer<SqlClient.SqlClient | SqlReader, StoreError> =>
  config.kind === "postgres"
    // The pool serves reads and writes alike.
    ? Layer.provideMerge(Layer.effect(SqlReader, SqlClient.SqlClient), layerPostgres(config))
    : layerSqlite(config)
