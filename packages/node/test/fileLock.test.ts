/**
 * Who may break a lock: a holder is judged dead by `kill(pid, 0)` only when its pid means
 * something here (same host and same PID namespace); otherwise only the heartbeat's age
 * counts. Records simulated here; test/hardening/crash.test.ts holds a real lock from
 * another PID namespace (`unshare -p -f`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration } from "effect"
import * as os from "node:os"
import * as FileLock from "../src/internal/fileLock.js"

/** A pid no process has here (the kernel's default pid_max is far below). */
const deadPid = 2 ** 30
const staleAfter = Duration.seconds(30)
const now = 1_000_000

const observed = (holder: FileLock.Holder, ageMs: number) => ({
  ino: 1n,
  mtimeMs: now - ageMs,
  raw: JSON.stringify(holder),
  holder: FileLock.parseHolder(JSON.stringify(holder))
})

describe("fileLock staleness", () => {
  const here = FileLock.pidNamespace()

  it("this process knows its PID namespace (Linux)", () => {
    expect(here).toMatch(/^\d+$/)
  })

  it("a dead pid in this host and namespace: broken at once", () => {
    expect(FileLock.isProcessAlive(deadPid)).toBe(false)
    const holder = { pid: deadPid, host: os.hostname(), ...(here === undefined ? {} : { pidns: here }) }
    expect(FileLock.staleness(observed(holder, 0), now, staleAfter)).toBe(`holder process ${deadPid} is gone`)
  })

  it("the same pid from another PID namespace (a container sharing the hostname): not broken while its heartbeat is fresh", () => {
    const holder = { pid: deadPid, host: os.hostname(), pidns: "1" }
    expect(FileLock.parseHolder(JSON.stringify(holder))?.pidns).toBe("1")
    expect(FileLock.staleness(observed(holder, 29_000), now, staleAfter)).toBeUndefined()
    expect(FileLock.staleness(observed(holder, 31_000), now, staleAfter)).toBe("untouched for 31 s")
  })

  it("a record without a namespace (an older agent-auth) is judged by its heartbeat alone", () => {
    const holder = { pid: deadPid, host: os.hostname() }
    expect(FileLock.staleness(observed(holder, 1_000), now, staleAfter)).toBeUndefined()
    expect(FileLock.staleness(observed(holder, 31_000), now, staleAfter)).toBe("untouched for 31 s")
  })
})
