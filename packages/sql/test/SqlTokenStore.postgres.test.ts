import * as TokenStoreSuite from "@agent-auth/testing/TokenStoreSuite"
import { Effect, Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as SecretBox from "../src/SecretBox.js"
import * as SqlStoreConfig from "../src/SqlStoreConfig.js"
import * as SqlTokenStore from "../src/SqlTokenStore.js"
import { testDatabaseUrl } from "./support/postgres.js"

/**
 * The store of a new principal on the test server's database: empty, as the suite needs,
 * while other tests' rows (other principals) sit beside it.
 */
const postgresLayer = Layer.unwrapEffect(Effect.map(
  Effect.suspend(() =>
    SqlStoreConfig.make({ kind: "postgres", url: testDatabaseUrl(), principal: `suite-${Crypto.randomUUID()}` })
  ),
  SqlTokenStore.layerConfig
)).pipe(Layer.provide(SecretBox.layer(Redacted.make(new Uint8Array(Crypto.randomBytes(32))))))

TokenStoreSuite.suite("SqlTokenStore (Postgres)", postgresLayer)
