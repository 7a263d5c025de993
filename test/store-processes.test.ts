/**
 * The file store across real processes: 8 node processes each run 50 read-modify-write
 * increments of one counter on the same credentials.json. Every increment must land
 * (final 400), no two processes may be inside the lock at once (the worker fails if its
 * O_EXCL marker already exists), and the file must still parse.
 */
import { AuthConfig, Domain } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Option, Redacted } from "effect"
import { spawn } from "node:child_process"
import * as fsp from "node:fs/promises"
import * as NodePath from "node:path"
import * as NodeTokenStore from "../packages/node/src/NodeTokenStore.js"
import { bundledFixture } from "./support/worker.js"

const processes = 8
const iterations = 50

const worker = bundledFixture("store-worker.ts")

interface Outcome {
  readonly code: number | null
  readonly stderr: string
}

const run = (home: string) =>
  Effect.async<Outcome>((resume) => {
    const child = spawn(process.execPath, [worker.path(), home, String(iterations)], { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on("error", (error) => resume(Effect.succeed({ code: -1, stderr: String(error) })))
    child.on("close", (code) => resume(Effect.succeed({ code, stderr })))
    return Effect.sync(() => {
      child.kill("SIGKILL")
    })
  })

describe("file store across processes", () => {
  it.live(`${processes} processes × ${iterations} modify: no update lost`, () =>
    Effect.gen(function*() {
      const home = NodePath.join(worker.dir(), "home")
      const outcomes = yield* Effect.all(Array.from({ length: processes }, () => run(home)), { concurrency: "unbounded" })
      for (const outcome of outcomes) expect(outcome).toEqual({ code: 0, stderr: "" })

      const store = yield* NodeTokenStore.makeFile().pipe(
        Effect.provide(AuthConfig.layerWith({ home })),
        Effect.provide(NodeFileSystem.layer)
      )
      const counter = yield* store.get({ provider: "demo", account: "counter" })
      expect(Option.isSome(counter)).toBe(true)
      const value = Option.getOrThrow(counter)
      expect(value._tag === "ApiKeyCredential" && Redacted.value(value.key)).toBe(String(processes * iterations))

      const json = JSON.parse(yield* Effect.promise(() => fsp.readFile(store.path, "utf8"))) as {
        version: number
        credentials: Array<unknown>
      }
      expect(json.version).toBe(1)
      expect(json.credentials.map((c) => Domain.keyString(c as Domain.CredentialKey))).toEqual(["demo/counter"])
      // Nothing left behind: no lock, no temp file, no marker.
      expect((yield* Effect.promise(() => fsp.readdir(home))).sort()).toEqual(["credentials.json"])
      expect((yield* Effect.promise(() => fsp.stat(store.path))).mode & 0o777).toBe(0o600)
    }), { timeout: 60_000 })
})
