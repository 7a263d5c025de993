import * as TokenStoreSuite from "@agent-auth/testing/TokenStoreSuite"
import { Effect, Layer, Redacted } from "effect"
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
