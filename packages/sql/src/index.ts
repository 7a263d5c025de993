/**
 * @agent-auth/sql — credentials in SQL, for many machines (Postgres) or one service (SQLite):
 * rows per principal, encrypted at rest, one refresh per expiry across every worker.
 */

/** `TokenStore` layers over `@effect/sql`, one store per principal. */
export * as SqlTokenStore from "./SqlTokenStore.js"
/** Where the database is (`AGENT_AUTH_DATABASE_URL`, …) and the `SqlClient` layer that reaches it. */
export * as SqlStoreConfig from "./SqlStoreConfig.js"
/** AES-256-GCM with key ids and rotation (`AGENT_AUTH_ENCRYPTION_KEY`, `…_KEYS_PREVIOUS`). */
export * as SecretBox from "./SecretBox.js"
/** The Migrator, safe on many workers at once, with a migrations table of its own per user. */
export * as SqlMigrations from "./SqlMigrations.js"
/** Refreshing many principals' logins at once, with bounded concurrency. */
export * as RefreshWave from "./RefreshWave.js"
