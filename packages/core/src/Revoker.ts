/**
 * Logout: RFC 7009 revocation where the provider has an endpoint (best effort, bounded in
 * time, result reported), then local deletion, which happens even when revocation fails.
 */
import { HttpClient } from "@effect/platform"
import { Context, Duration, Effect, Layer, Option } from "effect"
import { AuthConfig } from "./AuthConfig.js"
import type { CredentialKey, OAuthCredential } from "./Domain.js"
import type { AuthError } from "./Errors.js"
import { postRevocation } from "./internal/tokenEndpoint.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import { TokenStore } from "./TokenStore.js"

export type RevocationResult =
  | { readonly _tag: "Revoked" }
  | { readonly _tag: "NotSupported" }
  | { readonly _tag: "NothingToRevoke" }
  | { readonly _tag: "Failed"; readonly reason: string }

export interface LogoutResult {
  readonly revocation: RevocationResult
  readonly removed: boolean
}

export interface RevokerShape {
  readonly logout: (key: CredentialKey) => Effect.Effect<LogoutResult, AuthError>
}

export class Revoker extends Context.Tag("@agent-auth/core/Revoker")<Revoker, RevokerShape>() {}

/** How long a revocation may take before logout gives up on it and deletes locally. */
export const defaultRevokeTimeout: Duration.Duration = Duration.seconds(10)

export interface MakeOptions {
  readonly timeout?: Duration.DurationInput | undefined
}

const revoked: RevocationResult = { _tag: "Revoked" }
const notSupported: RevocationResult = { _tag: "NotSupported" }
const nothing: RevocationResult = { _tag: "NothingToRevoke" }

export const make = (
  options: MakeOptions = {}
): Effect.Effect<RevokerShape, never, TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const registry = yield* ProviderRegistry
    const config = yield* AuthConfig
    const http = yield* HttpClient.HttpClient
    // Never longer than one HTTP exchange is allowed to take.
    const timeout = Duration.min(Duration.decode(options.timeout ?? defaultRevokeTimeout), config.httpTimeout)

    /** One attempt, never retried: every failure becomes `Failed` with a reason that holds no secret. */
    const revoke = (login: OAuthCredential): Effect.Effect<RevocationResult> =>
      Effect.gen(function*() {
        const provider = yield* registry.get(login.provider)
        const metadata = yield* registry.metadata(provider)
        const endpoint = metadata.revocation_endpoint
        if (endpoint === undefined) {
          yield* Effect.logDebug("no revocation endpoint; deleting locally only").pipe(Effect.annotateLogs({ provider: provider.id }))
          return notSupported
        }
        // Revoking the refresh token ends the grant, access tokens included (RFC 7009 §2.1).
        const refresh = login.tokens.refreshToken
        yield* postRevocation(
          provider,
          endpoint,
          refresh === undefined
            ? { token: login.tokens.accessToken, token_type_hint: "access_token" }
            : { token: refresh, token_type_hint: "refresh_token" },
          provider.revokeFormat,
          timeout
        ).pipe(Effect.provideService(HttpClient.HttpClient, http))
        return revoked
      }).pipe(
        Effect.catchAll((e): Effect.Effect<RevocationResult> => Effect.succeed({ _tag: "Failed", reason: e.message }))
      )

    const logout = (key: CredentialKey): Effect.Effect<LogoutResult, AuthError> =>
      Effect.gen(function*() {
        const current = yield* store.get(key)
        const revocation = Option.isSome(current) && current.value._tag === "OAuthCredential"
          ? yield* revoke(current.value)
          : nothing
        const removed = yield* store.remove(key)
        yield* Effect.logDebug("logout").pipe(
          Effect.annotateLogs({
            provider: key.provider,
            account: key.account,
            revocation: revocation._tag,
            ...(revocation._tag === "Failed" ? { reason: revocation.reason } : {}),
            removed_locally: removed
          })
        )
        return { revocation, removed }
      })

    return Revoker.of({ logout })
  })

export const layer: Layer.Layer<
  Revoker,
  never,
  TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient
> = Layer.effect(Revoker, make())

export const layerWith = (
  options: MakeOptions
): Layer.Layer<Revoker, never, TokenStore | ProviderRegistry | AuthConfig | HttpClient.HttpClient> =>
  Layer.effect(Revoker, make(options))
