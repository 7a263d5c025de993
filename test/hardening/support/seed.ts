/**
 * A stored login without a browser: written into a home's `credentials.json` through the
 * real file store, as `agent-auth login` would leave it. The tokens are either real ones
 * from a fake server (`issueTokens`) or canaries the server has never seen.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { AuthConfig, Domain } from "@agent-auth/core"
import { NodeTokenStore } from "@agent-auth/node"
import { FakeAuthServer } from "@agent-auth/testing"
import { DateTime, Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

export interface Tokens {
  readonly access: string
  readonly refresh?: string | undefined
  readonly idToken?: string | undefined
  /** Seconds from now; negative for a token already expired. */
  readonly expiresIn: number
}

export const account = FakeAuthServer.defaultUser.email

export const seedLogin = (home: string, tokens: Tokens, provider = "acme"): Promise<void> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* NodeTokenStore.makeFile()
      const now = yield* DateTime.now
      yield* store.set(Domain.OAuthCredential.make({
        provider,
        account,
        tokens: Domain.TokenSet.make({
          accessToken: Redacted.make(tokens.access),
          ...(tokens.refresh === undefined ? {} : { refreshToken: Redacted.make(tokens.refresh) }),
          ...(tokens.idToken === undefined ? {} : { idToken: Redacted.make(tokens.idToken) }),
          expiresAt: DateTime.add(now, { seconds: tokens.expiresIn }),
          scopes: ["openid", "profile", "email", "offline_access"],
          tokenType: "Bearer"
        }),
        claims: Domain.AccountClaims.make({ email: account, subject: FakeAuthServer.defaultUser.sub }),
        obtainedAt: now
      }))
    }).pipe(Effect.provide(AuthConfig.layerWith({ home })), Effect.provide(NodeFileSystem.layer))
  )

/** Real tokens from `fake`, stored as a login in `home`. */
export const seedIssued = async (home: string, fake: FakeAuthServer.FakeAuthServerShape, expiresIn = 3_600) => {
  const issued = await Effect.runPromise(fake.issueTokens())
  await seedLogin(home, { access: issued.access_token, refresh: issued.refresh_token, idToken: issued.id_token, expiresIn })
  return issued
}

export const credentialsPath = (home: string) => path.join(home, "credentials.json")

export const readCredentials = (home: string) => fs.readFileSync(credentialsPath(home), "utf8")

/** The tokens stored for acme now (after a CLI command rotated them). */
export const storedTokens = (home: string) => {
  const doc = JSON.parse(readCredentials(home)) as { credentials: Array<{ tokens: Record<string, string> }> }
  const t = doc.credentials[0]!.tokens
  return [t.accessToken, t.refreshToken, t.idToken].filter((v): v is string => typeof v === "string")
}
