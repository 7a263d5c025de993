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

/**
 * A client whose every statement and transaction start is retried while the database is
 * busy. A statement that failed with SQLITE_BUSY stays "in progress" on its connection
 * (libsql neither resets nor finalizes it), and a later COMMIT there would fail with
 * "SQL statements in progress": so after SQLITE_BUSY the connection is dropped and the
 * retry runs on a new one.
 */
export const busyWaiting = (open: () => Libsql.Client, timeoutMs: number): Libsql.Client => {
  let client = open()
  const retry = <A>(attempt: (client: Libsql.Client) => Promise<A>) =>
    retryBusy(timeoutMs, () =>
      attempt(client).catch((e: unknown) => {
        if (isBusy(e)) {
          client.close()
          client = open()
        }
        throw e
      }))
  return {
    get closed() {
      return client.closed
    },
    get protocol() {
      return client.protocol
    },
    execute: (stmt) => retry((c) => c.execute(stmt)),
    batch: (stmts, mode) => retry((c) => c.batch(stmts, mode)),
    migrate: (stmts) => retry((c) => c.migrate(stmts)),
    transaction: (mode?: Libsql.TransactionMode) =>
      retry((c) => c.transaction(mode)).then(
        (tx) => busyWaitingTransaction(tx, timeoutMs),
        // @effect/sql-libsql takes its connection permit before BEGIN and releases it only
        // when a transaction it was given ends: a BEGIN that rejects keeps the permit, and
        // every later statement of the process waits forever. So a BEGIN that failed (busy
        // past the timeout, or anything else) is handed back as a transaction that fails
        // its first statement with that error, and that the library then ends.
        (error: unknown) => failedTransaction(error)
      ),
    executeMultiple: (sql) => retry((c) => c.executeMultiple(sql)),
    sync: () => client.sync(),
    close: () => client.close()
  }
}

/**
 * A transaction whose COMMIT waits too: outside WAL mode (a database another program
 * created), COMMIT needs every reader gone and fails with SQLITE_BUSY meanwhile, leaving
 * the transaction open to be committed again.
 */
const busyWaitingTransaction = (tx: Libsql.Transaction, timeoutMs: number): Libsql.Transaction => ({
  get closed() {
    return tx.closed
  },
  execute: (stmt) => tx.execute(stmt),
  batch: (stmts) => tx.batch(stmts),
  executeMultiple: (sql) => tx.executeMultiple(sql),
  rollback: () => tx.rollback(),
  // A COMMIT still busy at the timeout: closing rolls the transaction back, so this
  // connection does not keep the write lock (and every other process out) after we gave up.
  commit: () =>
    retryBusy(timeoutMs, () => tx.commit()).catch((error: unknown) => {
      tx.close()
      throw error
    }),
  close: () => tx.close()
})

/** A transaction that never began: every statement fails with why; ending it does nothing. */
const failedTransaction = (error: unknown): Libsql.Transaction => {
  let closed = false
  const fail = () => Promise.reject(error)
  return {
    get closed() {
      return closed
    },
    execute: fail,
    batch: fail,
    executeMultiple: fail,
    // Nothing was done, so there is nothing to commit or roll back.
    rollback: () => Promise.resolve(void (closed = true)),
    commit: () => Promise.resolve(void (closed = true)),
    close: () => void (closed = true)
  }
}
