import * as TokenStoreSuite from "@agent-auth/testing/TokenStoreSuite"
import { Domain, TokenStore } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { Context, DateTime, Deferred, type Duration, Effect, Fiber, Layer, Option, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as NodePath from "node:path"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlStoreConfig from "../src/SqlStoreConfig.js"
import * as SqlTokenStore from "../src/SqlTokenStore.js"

/** A store on a new SQLite file in a temporary folder, removed with the layer. */
const sqliteLayer = Layer.unwrapScoped(Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(NodePath.join(os.tmpdir(), "agent-auth-sqlite-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  const config = yield* SqlStoreConfig.make({ kind: "sqlite", url: `file:${NodePath.join(dir, "credentials.db")}` })
  return SqlTokenStore.layerConfig(config).pipe(
    Layer.provide(SecretBox.layer(Redacted.make(new Uint8Array(Crypto.randomBytes(32)))))
  )
}))

TokenStoreSuite.suite("SqlTokenStore (SQLite)", sqliteLayer)

/** Two stores (two connections, as two processes have) on one SQLite file, with their lock timeouts. */
const twoStores = (timeoutA: Duration.DurationInput, timeoutB: Duration.DurationInput) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(NodePath.join(os.tmpdir(), "agent-auth-sqlite-busy-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const key = Redacted.make(new Uint8Array(Crypto.randomBytes(32)))
    const store = (lockTimeout: Duration.DurationInput) =>
      Effect.flatMap(
        SqlStoreConfig.make({ kind: "sqlite", url: `file:${NodePath.join(dir, "credentials.db")}`, lockTimeout }),
        (config) => Layer.build(SqlTokenStore.layerConfig(config).pipe(Layer.provide(SecretBox.layer(key))))
      ).pipe(Effect.map((context) => Context.get(context, TokenStore.TokenStore)))
    return { a: yield* store(timeoutA), b: yield* store(timeoutB) }
  })

const apiKey = (value: string) =>
  Effect.map(DateTime.now, (now) =>
    Domain.ApiKeyCredential.make({ provider: "anthropic", account: "default", key: Redacted.make(value), obtainedAt: now }))

describe("SqlTokenStore (SQLite): another connection's write lock", () => {
  // Real time: the wait for SQLite's lock is a loop of short sleeps outside Effect's clock.
  it.live("a write that waited past its timeout fails with StoreLocked, and the next one works once the lock is free", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoStores("10 seconds", "500 millis")
      const key = { provider: "anthropic", account: "default" }
      yield* a.set(yield* apiKey("first"))
      const release = yield* Deferred.make<void>()
      const holding = yield* Effect.fork(a.modify(key, (current) => Effect.as(Deferred.await(release), current)))
      // A holds BEGIN IMMEDIATE until released: B's write waits its 500 ms, then gives up.
      yield* Effect.sleep("200 millis")
      expect(yield* Effect.flip(b.set(yield* apiKey("second")))).toMatchObject({ _tag: "StoreLocked" })
      yield* Deferred.succeed(release, void 0)
      yield* Fiber.join(holding)
      // Before the fix, B's connection permit was never given back: this waited forever.
      yield* b.set(yield* apiKey("third")).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "B's connection is stuck" }))
      const stored = yield* a.get(key)
      expect(Option.isSome(stored) && stored.value._tag === "ApiKeyCredential" && Redacted.value(stored.value.key)).toBe("third")
    }).pipe(Effect.scoped), 60_000)
})
