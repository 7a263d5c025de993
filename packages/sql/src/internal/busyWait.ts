/**
 * A libsql client whose writes wait for another process's write lock instead of failing.
 *
 * SQLite lets one connection write at a time; another one's `BEGIN IMMEDIATE` fails with
 * SQLITE_BUSY at once (libsql sets no busy timeout). SQLite's own busy timeout would wait
 * inside the synchronous native call, freezing the event loop for as long as another
 * process refreshes a token; so the wait is done here instead: retry with a short,
 * growing pause until `timeout`, then give up with SQLITE_BUSY.
 */
import type * as Libsql from "@libsql/client"

export const isBusy = (cause: unknown): boolean => {
  const e = cause as { code?: unknown; message?: unknown } | null
  return typeof e === "object" && e !== null &&
    ((typeof e.code === "string" && e.code.startsWith("SQLITE_BUSY")) ||
      (typeof e.message === "string" && e.message.includes("database is locked")))
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Runs `attempt` until it does not fail with SQLITE_BUSY, or `timeoutMs` have passed. */
export const retryBusy = async <A>(timeoutMs: number, attempt: () => Promise<A>): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let wait = 2
  for (;;) {
    try {
      return await attempt()
    } catch (e) {
      if (!isBusy(e) || Date.now() >= deadline) throw e
      // Jitter, so processes waiting together do not retry in step.
      await pause(Math.min(wait, Math.max(1, deadline - Date.now())) * (0.5 + Math.random()))
      wait = Math.min(wait * 2, 50)
    }
  }
}

/** `client`, with every statement and every transaction start retried while the database is busy. */
export const busyWaiting = (client: Libsql.Client, timeoutMs: number): Libsql.Client => {
  const wrapped: Libsql.Client = {
    get closed() {
      return client.closed
    },
    get protocol() {
      return client.protocol
    },
    execute: (stmt) => retryBusy(timeoutMs, () => client.execute(stmt)),
    batch: (stmts, mode) => retryBusy(timeoutMs, () => client.batch(stmts, mode)),
    migrate: (stmts) => retryBusy(timeoutMs, () => client.migrate(stmts)),
    transaction: (mode?: Libsql.TransactionMode) => retryBusy(timeoutMs, () => client.transaction(mode)),
    executeMultiple: (sql) => retryBusy(timeoutMs, () => client.executeMultiple(sql)),
    sync: () => client.sync(),
    close: () => client.close()
  }
  return wrapped
}
