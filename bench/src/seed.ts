/**
 * `node bench/dist/seed.mjs <home>`: a home holding one valid ChatGPT login for `openai`
 * (expires in 10 hours), written by the real file store, for the `token` start-up figure.
 * Prints the access token, so the bench can check `agent-auth token openai` printed it.
 */
import { AuthConfig, Domain, TokenStore } from "@agent-auth/core"
import { NodeTokenStore } from "@agent-auth/node"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { DateTime, Effect, Layer, Redacted } from "effect"

const home = process.argv[2]
if (home === undefined) throw new Error("usage: seed.mjs <home>")

const accessToken = "bench-access-token-0001"
const login = Domain.OAuthCredential.make({
  provider: "openai",
  account: "ada@example.test",
  tokens: Domain.TokenSet.make({
    accessToken: Redacted.make(accessToken),
    refreshToken: Redacted.make("bench-refresh-token-0001"),
    expiresAt: DateTime.unsafeMake(Date.now() + 10 * 3_600_000),
    scopes: ["openid", "offline_access"],
    tokenType: "Bearer"
  }),
  claims: Domain.AccountClaims.make({ email: "ada@example.test", accountId: "acct-bench" }),
  obtainedAt: DateTime.unsafeMake(Date.now())
})

await Effect.runPromise(
  Effect.flatMap(TokenStore.TokenStore, (store) => store.set(login)).pipe(
    Effect.provide(NodeTokenStore.layerFile.pipe(Layer.provide(Layer.mergeAll(NodeFileSystem.layer, AuthConfig.layerWith({ home }))))))
)
process.stdout.write(accessToken + "\n")
