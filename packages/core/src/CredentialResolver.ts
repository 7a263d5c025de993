/**
 * What every model call asks: `resolve(provider)` gives a ready `Credential` from, per the
 * provider's `mode`, its environment variable, config.json's `apiKeys`, a stored key, or
 * the OAuth login (refreshed through `Refresher` when due).
 *
 * Order by mode (an `api_key` provider always behaves as `api_key_only`):
 * - `auto`: env, config.json, stored key, OAuth.
 * - `api_key_only`: env, config.json, stored key.
 * - `prefer_oauth`: OAuth when a login exists and is usable (a login needing a new sign-in
 *   falls through), then env, config.json, stored key.
 * - `oauth_only`: OAuth.
 * When the caller names an `account`, only that stored account is considered (environment
 * and config.json keys belong to no account).
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import { AuthConfig } from "./AuthConfig.js"
import type { Credential, OAuthCredential, StoredCredential } from "./Domain.js"
import type { AuthError } from "./Errors.js"
import { ConfigInvalid } from "./Errors.js"
import { apiKeyCredential, bearerCredential, notLoggedIn } from "./internal/credentialHeaders.js"
import type { ProviderConfig } from "./Provider.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import { Refresher } from "./Refresher.js"
import { TokenStore } from "./TokenStore.js"

export interface ResolveOptions {
  readonly account?: string | undefined
  /** Refresh the OAuth token even if it looks valid (the model API answered 401). */
  readonly forceRefresh?: boolean | undefined
}

export interface CredentialResolverShape {
  readonly resolve: (provider: string, options?: ResolveOptions) => Effect.Effect<Credential, AuthError>
}

export class CredentialResolver extends Context.Tag("@agent-auth/core/CredentialResolver")<CredentialResolver, CredentialResolverShape>() {}

/**
 * Picks the account when the caller names none and several are stored (`accounts` in
 * `TokenStore.list` order, never empty). The seam for `agent-auth use <provider> <account>`.
 */
export type ChooseAccount = (
  provider: ProviderConfig,
  accounts: ReadonlyArray<string>
) => Effect.Effect<string | undefined, AuthError>

/** Until default accounts exist: the first in list order. */
export const firstAccount: ChooseAccount = (_, accounts) => Effect.succeed(accounts[0])

export interface MakeOptions {
  readonly chooseAccount?: ChooseAccount | undefined
}

type Found = Effect.Effect<Option.Option<Credential>, AuthError>
const none: Found = Effect.succeedNone

export const make = (
  options: MakeOptions = {}
): Effect.Effect<CredentialResolverShape, never, TokenStore | ProviderRegistry | AuthConfig | Refresher> =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const registry = yield* ProviderRegistry
    const config = yield* AuthConfig
    const refresher = yield* Refresher
    const chooseAccount = options.chooseAccount ?? firstAccount
    // A login's Credential depends only on the login object and its provider: reuse it
    // while the store hands back the same object (a fresh token in memory costs no allocation).
    const bearerCache = new WeakMap<OAuthCredential, Credential>()

    const fromEnv = (provider: ProviderConfig): Found =>
      Effect.gen(function*() {
        for (const variable of provider.apiKeyEnv) {
          const value = yield* Config.option(Config.redacted(variable)).pipe(
            Effect.mapError((e) => new ConfigInvalid({ source: "environment", field: variable, reason: e.message }))
          )
          // An empty variable is unset (`OPENAI_API_KEY= cmd` must not send an empty key).
          if (Option.isSome(value) && Redacted.value(value.value).length > 0) {
            return Option.some(apiKeyCredential(provider, value.value, { _tag: "Env", variable }))
          }
        }
        return Option.none()
      })

    const fromConfig = (provider: ProviderConfig): Found => {
      const key = config.file.apiKeys?.[provider.id]
      return key === undefined
        ? none
        : Effect.succeed(Option.some(apiKeyCredential(provider, key, { _tag: "Config", path: config.configPath })))
    }

    /** The stored credentials of one tag, narrowed to the named account or chosen among several. */
    const pick = <T extends StoredCredential["_tag"]>(
      provider: ProviderConfig,
      all: ReadonlyArray<StoredCredential>,
      tag: T
    ): Effect.Effect<Option.Option<Extract<StoredCredential, { _tag: T }>>, AuthError> => {
      const of = all.filter((c): c is Extract<StoredCredential, { _tag: T }> => c._tag === tag)
      if (of.length === 0) return Effect.succeedNone
      if (of.length === 1) return Effect.succeed(Option.some(of[0]!))
      return Effect.map(
        chooseAccount(provider, of.map((c) => c.account)),
        (account) => Option.fromNullable(of.find((c) => c.account === account) ?? of[0])
      )
    }

    const fromStoredKey = (provider: ProviderConfig, all: ReadonlyArray<StoredCredential>): Found =>
      Effect.map(
        pick(provider, all, "ApiKeyCredential"),
        Option.map((c) => apiKeyCredential(provider, c.key, { _tag: "StoredKey", store: store.location }))
      )

    const fromOAuth = (provider: ProviderConfig, all: ReadonlyArray<StoredCredential>, force: boolean): Found =>
      Effect.flatMap(pick(provider, all, "OAuthCredential"), (found) => {
        if (Option.isNone(found)) return none
        return Effect.map(
          refresher.fresh({ provider: provider.id, account: found.value.account }, { force }),
          (login) => {
            let credential = bearerCache.get(login)
            if (credential === undefined) {
              credential = bearerCredential(provider, login, store.location)
              bearerCache.set(login, credential)
            }
            return Option.some(credential)
          }
        )
      })

    const firstOf = (steps: ReadonlyArray<() => Found>): Found => {
      const loop = (i: number): Found => {
        const step = steps[i]
        if (step === undefined) return none
        return Effect.flatMap(step(), (found) => Option.isSome(found) ? Effect.succeed(found) : loop(i + 1))
      }
      return loop(0)
    }

    const resolve = (id: string, opts: ResolveOptions = {}): Effect.Effect<Credential, AuthError> =>
      Effect.gen(function*() {
        const provider = yield* registry.get(id)
        const mode = provider.kind === "api_key" ? "api_key_only" : provider.mode
        const named = opts.account
        const force = opts.forceRefresh === true
        // Read the store at most once per resolve, and only when the cheaper sources gave nothing.
        let stored: ReadonlyArray<StoredCredential> | undefined
        const storedOnce = Effect.suspend(() =>
          stored !== undefined
            ? Effect.succeed(stored)
            : Effect.map(
              named === undefined
                ? store.list(provider.id)
                : Effect.map(store.get({ provider: provider.id, account: named }), Option.toArray),
              (all) => (stored = all)
            )
        )
        const env = () => named === undefined ? fromEnv(provider) : none
        const file = () => named === undefined ? fromConfig(provider) : none
        const storedKey = () => Effect.flatMap(storedOnce, (all) => fromStoredKey(provider, all))
        const oauth = () => Effect.flatMap(storedOnce, (all) => fromOAuth(provider, all, force))
        const keys = [env, file, storedKey]

        let found: Option.Option<Credential>
        switch (mode) {
          case "api_key_only":
            found = yield* firstOf(keys)
            break
          case "oauth_only":
            found = yield* oauth()
            break
          case "prefer_oauth": {
            // A login that needs a new sign-in yields to a key; with no key, its error is the better answer.
            const viaOAuth = yield* Effect.either(oauth())
            if (viaOAuth._tag === "Right" && Option.isSome(viaOAuth.right)) return viaOAuth.right.value
            if (viaOAuth._tag === "Left" && viaOAuth.left._tag !== "ReauthRequired") return yield* Effect.fail(viaOAuth.left)
            found = yield* firstOf(keys)
            if (Option.isNone(found) && viaOAuth._tag === "Left") return yield* Effect.fail(viaOAuth.left)
            break
          }
          default:
            found = yield* firstOf([...keys, oauth])
        }
        if (Option.isSome(found)) return found.value
        return yield* Effect.fail(notLoggedIn(provider))
      })

    return CredentialResolver.of({ resolve })
  })

export const layer: Layer.Layer<
  CredentialResolver,
  never,
  TokenStore | ProviderRegistry | AuthConfig | Refresher
> = Layer.effect(CredentialResolver, make())

/** With another account chooser (the default-account feature, or a runtime's own). */
export const layerWith = (
  options: MakeOptions
): Layer.Layer<CredentialResolver, never, TokenStore | ProviderRegistry | AuthConfig | Refresher> =>
  Layer.effect(CredentialResolver, make(options))
