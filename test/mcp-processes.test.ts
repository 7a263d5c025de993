/**
 * mcp.json across real processes: 8 node processes, started together, each add their own
 * registration and 10 server records, every one a read-modify-write of the same file
 * (`McpServers.update`). Every record and registration must be there at the end: the file
 * lock (`mcp.json.lock`, the one credentials.json uses) keeps one process from writing
 * over another's change. Without it, writes are lost.
 */
import { describe, expect, it } from "vitest"
import { spawn } from "node:child_process"
import * as fsp from "node:fs/promises"
import * as NodePath from "node:path"
import { bundledFixture } from "./support/worker.js"

const processes = 8
const perProcess = 10

const worker = bundledFixture("mcp-servers-worker.ts")

const runWorker = (home: string, index: number, startAt: number) =>
  new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [worker.path(), home, String(index), String(perProcess), String(startAt)], {
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.on("error", (error) => resolve({ code: -1, stderr: String(error) }))
    child.on("close", (code) => resolve({ code, stderr }))
  })

describe("mcp.json across processes", () => {
  it(`${processes} processes × ${perProcess + 1} updates at once: every server record and registration is kept`, async () => {
    const home = NodePath.join(worker.dir(), "home")
    // Every process waits for the same moment, so their updates overlap.
    const startAt = Date.now() + 1500
    const outcomes = await Promise.all(Array.from({ length: processes }, (_, i) => runWorker(home, i, startAt)))
    for (const outcome of outcomes) expect(outcome).toEqual({ code: 0, stderr: "" })
    const file = JSON.parse(await fsp.readFile(NodePath.join(home, "mcp.json"), "utf8")) as {
      servers: Record<string, { url: string }>
      registrations: Record<string, { clientId: string }>
    }
    const expected = Array.from({ length: processes }, (_, p) => Array.from({ length: perProcess }, (_, i) => `p${p}-${i}`)).flat()
    expect(Object.keys(file.servers).sort()).toEqual(expected.sort())
    expect(Object.keys(file.registrations)).toHaveLength(processes)
    // Nothing left behind: no lock, no temp file; the file private.
    expect((await fsp.readdir(home)).sort()).toEqual(["mcp.json"])
    expect((await fsp.stat(NodePath.join(home, "mcp.json"))).mode & 0o777).toBe(0o600)
  }, 60_000)
})
