/**
 * `AGENT_AUTH_STORE=postgres|sqlite`: the SQL stores of @agent-auth/sql, loaded with import()
 * only when one is chosen, so no other run loads the database drivers (in the bundle the
 * module is initialised on first import; libsql's native binding stays outside it, see
 * build.mjs). The small bundle never comes here: the launcher sends SQL stores to the
 * whole CLI.
 */
import type { NodeAuth } from "@agent-auth/node"
import { Effect, Layer } from "effect"

export const sqlStore: NodeAuth.SqlStoreLayer = (kind) =>
  Layer.unwrapEffect(Effect.map(Effect.promise(() => import("@agent-auth/sql")), (sql) => sql.SqlTokenStore.layerEnv(kind)))
