/** The libsql wrapper's ends of a transaction when SQLite stays busy (fakes for the client: the cases need no file). */
import { describe, expect, it } from "@effect/vitest"
import type * as Libsql from "@libsql/client"
import { busyWaiting } from "../src/internal/busyWait.js"

const busy = Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" })

/** A fake client: `transaction` does what `begin` says; its transactions' COMMIT what `commit` says. */
const fakeClient = (begin: () => Promise<void>, commit: () => Promise<void>, closed: Array<string>) =>
  (): Libsql.Client =>
    ({
      closed: false,
      protocol: "file",
      close: () => void closed.push("client"),
      transaction: async () => {
        await begin()
        return {
          closed: false,
          execute: () => Promise.resolve({ rows: [] }),
          commit,
          rollback: () => Promise.resolve(),
          close: () => void closed.push("transaction")
        }
      }
    }) as unknown as Libsql.Client

describe("busyWaiting", () => {
  it("a BEGIN still busy at the timeout gives a transaction that fails its first statement with it, and ends quietly", async () => {
    const closed: Array<string> = []
    const client = busyWaiting(fakeClient(() => Promise.reject(busy), () => Promise.resolve(), closed), 30)
    const tx = await client.transaction("write")
    await expect(tx.execute("SELECT 1")).rejects.toBe(busy)
    await expect(tx.rollback()).resolves.toBeUndefined()
    expect(tx.closed).toBe(true)
  })

  it("a COMMIT still busy at the timeout rolls the transaction back (closes it), then fails", async () => {
    const closed: Array<string> = []
    let commits = 0
    const client = busyWaiting(fakeClient(() => Promise.resolve(), () => (commits++, Promise.reject(busy)), closed), 30)
    const tx = await client.transaction("write")
    await expect(tx.commit()).rejects.toBe(busy)
    expect(commits).toBeGreaterThan(1)
    expect(closed).toEqual(["transaction"])
  })
})
