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
 * and config.json keys belong to no account). Among several stored accounts, the one
 * `agent-auth use` chose (config.json `defaults`) is used, else the first.
 *
 * That order exists once, in `plan`: `resolve` walks it lazily (the store is read only when
 * the cheaper sources gave nothing), `sources` lists all of it (for `agent-auth status`),
 * and `available` asks it, offline, which providers can give a credential right now (what
 * a runtime's model selector asks before choosing a model).
 */
import {
  Clock,
  Config,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Effectable,
  Either,
  Exit,
  Fiber,
  FiberRef,
  Layer,
  LogLevel,
  Option,
  Redacted
} from "effect"
import { YieldWrap } from "effect/Utils"
import { FileSystem } from "@effect/platform"
import { AuthConfig, type AuthConfigShape } from "./AuthConfig.js"
import type { ApiKeyCredential, Credential, CredentialSource, OAuthCredential, StoredCredential } from "./Domain.js"
import type { AuthError } from "./Errors.js"
import { AdcInvalid, ConfigInvalid } from "./Errors.js"
import { apiKeyCredential, bearerCredential, notLoggedIn } from "./internal/credentialHeaders.js"
import * as GoogleAdc from "./internal/googleAdc.js"
import * as SingleFlight from "./internal/singleFlight.js"
import type { CredentialMode, ProviderConfig } from "./Provider.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import { Refresher, refreshDueAt } from "./Refresher.js"
import { TokenStore } from "./TokenStore.js"

export interface ResolveOptions {
  readonly account?: string | undefined
  /** Refresh the OAuth token even if it looks valid (the model API answered 401). */
  readonly forceRefresh?: boolean | undefined
}

export interface SourcesOptions {
  /** Only this stored account (environment and config.json keys belong to no account). */
  readonly account?: string | undefined
}

export interface SourceBase {
  /**
   * `resolve` tries this source when the ones listed before it give nothing. False for an
   * environment variable after one that is set, and for a stored account that is not the
   * chosen one (see `use`): those are listed, never used implicitly.
   */
  readonly eligible: boolean
  /**
   * It can give a credential without a new sign-in: any key; a login that has a refresh
   * token or an unexpired access token, and that the provider has not refused. Decided
   * offline: a refresh may still be refused.
   */
  readonly usable: boolean
}

/** One place a credential can come from. `origin` is what the resolved `Credential.source` would say. */
export type Source =
  | SourceBase & {
    readonly _tag: "Env"
    readonly origin: Extract<CredentialSource, { readonly _tag: "Env" }>
    readonly key: Redacted.Redacted<string>
  }
  | SourceBase & {
    readonly _tag: "Config"
    readonly origin: Extract<CredentialSource, { readonly _tag: "Config" }>
    readonly key: Redacted.Redacted<string>
  }
  | SourceBase & {
    readonly _tag: "StoredKey"
    readonly origin: Extract<CredentialSource, { readonly _tag: "StoredKey" }>
    readonly credential: ApiKeyCredential
  }
  | SourceBase & {
    readonly _tag: "OAuth"
    readonly origin: Extract<CredentialSource, { readonly _tag: "OAuth" }>
    readonly credential: OAuthCredential
  }
  | SourceBase & {
    /** Google's Application Default Credentials (`google_adc` providers), or why they cannot be used. */
    readonly _tag: "Adc"
    readonly origin: Extract<CredentialSource, { readonly _tag: "Adc" }>
    readonly adc: Either.Either<GoogleAdc.Adc, AdcInvalid | ConfigInvalid>
  }

/** A provider that can give a credential now, and the source `resolve` would use. */
export interface Available {
  readonly provider: ProviderConfig
  readonly source: Source
}

export interface AvailableOptions {
  /**
   * Provider ids, most preferred first (default: config.json `priority`). Providers not
   * listed follow in registry order; unknown ids are ignored.
   */
  readonly priority?: ReadonlyArray<string> | undefined
}

export interface CredentialResolverShape {
  readonly resolve: (provider: string, options?: ResolveOptions) => Effect.Effect<Credential, AuthError>
  /**
   * Every credential source of a provider, in the order `resolve` considers them under the
   * provider's mode, every stored account included. Local state only: no network.
   */
  readonly sources: (provider: string, options?: SourcesOptions) => Effect.Effect<ReadonlyArray<Source>, AuthError>
  /**
   * The providers that can give a credential right now (an environment variable, a stored
   * key, config.json, or a login not yet past re-login), in priority order. No network:
   * what a model selector asks before offering a model.
   */
  readonly available: (options?: AvailableOptions) => Effect.Effect<ReadonlyArray<Available>, AuthError>
}

export class CredentialResolver extends Context.Tag("@agent-auth/core/CredentialResolver")<CredentialResolver, CredentialResolverShape>() {}

/**
 * Picks the account when the caller names none and several are stored (`accounts` in
 * `TokenStore.list` order, never empty). An answer that is not among them means the first.
 */
export type ChooseAccount = (
  provider: ProviderConfig,
  accounts: ReadonlyArray<string>
) => Effect.Effect<string | undefined, AuthError>

/** The first in list order. */
export const firstAccount: ChooseAccount = (_, accounts) => Effect.succeed(accounts[0])

/** The default `agent-auth use` recorded (config.json `defaults`) when it is stored, else the first. */
export const configuredAccount = (config: AuthConfigShape): ChooseAccount => (provider, accounts) => {
  const chosen = config.file.defaults?.[provider.id]
  return Effect.succeed(chosen !== undefined && accounts.includes(chosen) ? chosen : accounts[0])
}

export interface MakeOptions {
  /** Default: `configuredAccount` (config.json `defaults`). */
  readonly chooseAccount?: ChooseAccount | undefined
  /**
   * How long an answer of `resolve` is reused without reading its sources again (default
   * 1 second; zero: never). What this process can see ends the reuse at once: a write
   * through the same `TokenStore` (`TokenStore.revision`), the access token reaching its
   * refresh time, another `ConfigProvider` or `Clock`, debug logging (every call is then
   * traced). What only the outside world changes (a login or logout by another process, an
   * environment variable the runtime sets while running) is seen within this long.
   */
  readonly revalidateAfter?: Duration.DurationInput | undefined
}

/** Default of `MakeOptions.revalidateAfter`. */
export const defaultRevalidateAfter: Duration.Duration = Duration.seconds(1)

/** Usable without a new sign-in (see `SourceBase.usable`); never after the provider refused it. */
export const loginUsable = (login: OAuthCredential, nowMillis: number): boolean => {
  const t = login.tokens
  return login.refusal === undefined &&
    (t.refreshToken !== undefined || t.expiresAt === undefined || t.expiresAt.epochMillis > nowMillis)
}

/** The mode that applies: a provider that only takes keys behaves as `api_key_only` whatever it says. */
export const effectiveMode = (provider: ProviderConfig): CredentialMode =>
  provider.kind === "api_key" ? "api_key_only" : provider.mode

type Step = Effect.Effect<ReadonlyArray<Source>, AuthError>
const nothing: Step = Effect.succeed([])

export const make = (
  options: MakeOptions = {}
): Effect.Effect<CredentialResolverShape, never, TokenStore | ProviderRegistry | AuthConfig | Refresher> =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const registry = yield* ProviderRegistry
    const config = yield* AuthConfig
    const refresher = yield* Refresher
    const chooseAccount = options.chooseAccount ?? configuredAccount(config)
    // Only `google_adc` providers read a file of their own (the ADC); a runtime without a file system has none.
    const files = yield* Effect.serviceOption(FileSystem.FileSystem)
    // A login's Credential depends only on the login object and its provider: reuse it
    // while the store hands back the same object (a fresh token in memory costs no allocation).
    const bearerCache = new WeakMap<OAuthCredential, Credential>()

    const fromEnv = (provider: ProviderConfig): Step =>
      Effect.gen(function*() {
        const out: Array<Source> = []
        for (const variable of provider.apiKeyEnv) {
          const value = yield* Config.option(Config.redacted(variable)).pipe(
            Effect.mapError((e) => new ConfigInvalid({ source: "environment", field: variable, reason: e.message }))
          )
          // An empty or blank variable is unset (`OPENAI_API_KEY= cmd` must not send an empty
          // key), and a key pasted with a space or newline around it is sent without them.
          const key = Option.isSome(value) ? Redacted.value(value.value).trim() : ""
          if (key.length > 0) {
            out.push({ _tag: "Env", origin: { _tag: "Env", variable }, key: Redacted.make(key), eligible: out.length === 0, usable: true })
          }
        }
        return out
      })

    const fromConfig = (provider: ProviderConfig): Step => {
      const key = config.file.apiKeys?.[provider.id]
      return key === undefined
        ? nothing
        : Effect.succeed([{ _tag: "Config", origin: { _tag: "Config", path: config.configPath }, key, eligible: true, usable: true }])
    }

    /** The chosen account among the stored credentials of one kind (the only one, the named one, or `chooseAccount`'s). */
    const chosenAccount = (provider: ProviderConfig, of: ReadonlyArray<StoredCredential>) =>
      of.length <= 1
        ? Effect.succeed(of[0]?.account)
        : Effect.map(chooseAccount(provider, of.map((c) => c.account)), (a) =>
          a !== undefined && of.some((c) => c.account === a) ? a : of[0]!.account)

    const fromStoredKeys = (provider: ProviderConfig, all: ReadonlyArray<StoredCredential>): Step => {
      const of = all.filter((c): c is ApiKeyCredential => c._tag === "ApiKeyCredential")
      if (of.length === 0) return nothing
      return Effect.map(chosenAccount(provider, of), (chosen) =>
        of.map((credential): Source => ({
          _tag: "StoredKey",
          origin: { _tag: "StoredKey", store: store.locationOf?.(credential) ?? store.location },
          credential,
          eligible: credential.account === chosen,
          usable: true
        })))
    }

    const fromLogins = (provider: ProviderConfig, all: ReadonlyArray<StoredCredential>): Step => {
      const of = all.filter((c): c is OAuthCredential => c._tag === "OAuthCredential")
      if (of.length === 0) return nothing
      return Effect.flatMap(chosenAccount(provider, of), (chosen) =>
        Effect.map(Clock.currentTimeMillis, (now) =>
          of.map((credential): Source => ({
            _tag: "OAuth",
            origin: { _tag: "OAuth", store: store.locationOf?.(credential) ?? store.location },
            credential,
            eligible: credential.account === chosen,
            usable: loginUsable(credential, now)
          }))))
    }

    /**
     * The ADC file, read afresh (it is small, and gcloud may rewrite it). A file that cannot
     * be used is a source saying why, except gcloud's default file when it is simply absent:
     * that is no source (`resolve` then names it), so `status` and `available` stay quiet
     * for people who do not use Google Cloud.
     */
    const fromAdc: Step = Effect.gen(function*() {
      const path = yield* GoogleAdc.adcPath
      const adc = Option.isNone(files)
        ? Either.left(new ConfigInvalid({ source: path, field: "(file)", reason: "this runtime has no file system to read it from" }))
        : yield* Effect.either(GoogleAdc.readAdc(files.value))
      if (Either.isLeft(adc) && adc.left._tag === "AdcInvalid" && adc.left.reason === "no such file") {
        const explicit = yield* Effect.orElseSucceed(Config.string("GOOGLE_APPLICATION_CREDENTIALS"), () => "")
        if (explicit.trim() === "") return []
      }
      const origin = Either.match(adc, {
        onLeft: () => ({ _tag: "Adc" as const, path }),
        onRight: (a) => ({ _tag: "Adc" as const, path, type: a.credentials.type, account: GoogleAdc.accountOf(a) })
      })
      return [{ _tag: "Adc", origin, adc, eligible: true, usable: Either.isRight(adc) }]
    })

    /**
     * The sources of one provider, in the order its mode gives, as lazy steps: the store is
     * read at most once, and only when a step needs it.
     */
    const plan = (provider: ProviderConfig, named: string | undefined): ReadonlyArray<Step> => {
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
      if (provider.kind === "google_adc") return [fromAdc]
      const env = named === undefined ? fromEnv(provider) : nothing
      const file = named === undefined ? fromConfig(provider) : nothing
      const storedKeys = Effect.flatMap(storedOnce, (all) => fromStoredKeys(provider, all))
      const logins = Effect.flatMap(storedOnce, (all) => fromLogins(provider, all))
      switch (effectiveMode(provider)) {
        case "api_key_only":
          return [env, file, storedKeys]
        case "oauth_only":
          return [logins]
        case "prefer_oauth":
          return [logins, env, file, storedKeys]
        default:
          return [env, file, storedKeys, logins]
      }
    }

    const skewMillis = Duration.toMillis(config.refreshSkew)

    /** A credential, and until when time alone leaves it valid (a login's refresh time; never for a key). */
    interface Found {
      readonly credential: Credential
      readonly until: number
    }

    const bearer = (provider: ProviderConfig, login: OAuthCredential, force: boolean) =>
      Effect.map(
        refresher.fresh({ provider: provider.id, account: login.account }, { force, current: login }),
        (fresh): Found => {
          let credential = bearerCache.get(fresh)
          if (credential === undefined) {
            credential = bearerCredential(provider, fresh, store.locationOf?.(fresh) ?? store.location)
            bearerCache.set(fresh, credential)
          }
          // The Refresher's boundary: fresh while expiresAt − now > its margin.
          return { credential, until: refreshDueAt(fresh, skewMillis) }
        }
      )

    /** A bearer token for the ADC, held in memory by the Refresher (one grant at a time per file and identity). */
    const adcBearer = (provider: ProviderConfig, adc: GoogleAdc.Adc, force: boolean) =>
      Effect.gen(function*() {
        const c = adc.credentials
        const account = `${adc.path}#${c.type === "service_account" ? c.client_email : c.client_id}`
        const login = yield* refresher.held(
          { provider: provider.id, account },
          GoogleAdc.grant(provider, adc, account, config.httpTimeout),
          { force }
        )
        const credential = GoogleAdc.adcCredential(provider, adc, login, yield* GoogleAdc.vertexBaseUrl(provider, adc))
        const expiresAt = login.tokens.expiresAt
        return { credential, until: expiresAt === undefined ? Infinity : expiresAt.epochMillis - skewMillis } satisfies Found
      })

    // On the hot path: built only when debug logging is on (a trace costs more than a resolve).
    const chosen = (provider: ProviderConfig, source: Source) =>
      Effect.whenLogLevel(
        Effect.suspend(() =>
          Effect.logDebug("credential chosen").pipe(
            Effect.annotateLogs({
              provider: provider.id,
              source: source._tag,
              ...(source._tag === "Env" ? { variable: source.origin.variable } : {}),
              ...(source._tag === "StoredKey" || source._tag === "OAuth" ? { account: source.credential.account } : {}),
              ...(source._tag === "Adc" ? { adc: source.origin.path } : {})
            })
          )
        ),
        LogLevel.Debug
      )

    /** `resolve` from the sources themselves: the plan walked in order. */
    const resolveFrom = (id: string, account: string | undefined, force: boolean): Effect.Effect<Found, AuthError> =>
      Effect.gen(function*() {
        const provider = yield* registry.get(id)
        // A login that needs a new sign-in yields to a key listed after it; with no key, its error is the better answer.
        let refused: AuthError | undefined
        for (const step of plan(provider, account)) {
          const source = (yield* step).find((s) => s.eligible)
          if (source === undefined) continue
          if (source._tag === "Adc") {
            if (Either.isLeft(source.adc)) return yield* Effect.fail(source.adc.left)
            const found = yield* adcBearer(provider, source.adc.right, force)
            yield* chosen(provider, source)
            return found
          }
          if (source._tag !== "OAuth") {
            yield* chosen(provider, source)
            const credential = source._tag === "StoredKey"
              ? apiKeyCredential(provider, source.credential.key, source.origin)
              : apiKeyCredential(provider, source.key, source.origin)
            return { credential, until: Infinity }
          }
          const got = yield* Effect.either(bearer(provider, source.credential, force))
          if (Either.isRight(got)) {
            yield* chosen(provider, source)
            return got.right
          }
          if (got.left._tag !== "ReauthRequired") return yield* Effect.fail(got.left)
          yield* Effect.logDebug("login needs a new sign-in; trying the next source").pipe(
            Effect.annotateLogs({ provider: provider.id, account: source.credential.account, rule: "ReauthRequired" })
          )
          refused = got.left
        }
        if (provider.kind === "google_adc") {
          return yield* Effect.fail(new AdcInvalid({ path: yield* GoogleAdc.adcPath, reason: "no such file" }))
        }
        return yield* Effect.fail(refused ?? notLoggedIn(provider, account))
      })

    // ---------------------------------------------------------------------------------
    // The hot path: a runtime resolves before every model call, nearly always to the answer
    // it got the call before. That answer is kept with what it was derived from and reused
    // while none of it changed (see `MakeOptions.revalidateAfter`); concurrent callers that
    // find it stale share one look at the sources (one refresh, one store read).

    const revalidateMillis = Duration.toMillis(Duration.decode(options.revalidateAfter ?? defaultRevalidateAfter))
    const debugOrdinal = LogLevel.Debug.ordinal

    interface Answer {
      /** The credential, as an effect that is its own result (reused: no allocation per call). */
      readonly exit: Exit.Success<Credential, never>
      /** The fiber services it was derived under; `configProvider` and `clock` are the parts that matter. */
      readonly services: Context.Context<never>
      readonly configProvider: ConfigProvider.ConfigProvider
      readonly clock: Clock.Clock
      /** `store.revision()` before the sources were read. */
      readonly revision: number
      /** Reused while `from <= now < until` (a clock that went back reads again). */
      readonly from: number
      readonly until: number
    }

    /**
     * `resolve` of one provider (and account), prepared once. When the last answer still
     * holds it is given back without reading the store or the environment: under `yield*`
     * straight to the generator, otherwise in one fiber step (bench/ measures both against
     * `Effect.succeed`).
     */
    class Prepared extends Effectable.Class<Credential, AuthError> {
      answer: Answer | undefined = undefined
      readonly fresh: Effect.Effect<Credential, AuthError>
      constructor(readonly key: string, readonly id: string, readonly account: string | undefined) {
        super()
        this.fresh = Effect.withFiberRuntime<Credential, AuthError>((fiber) => {
          // Debug logging traces every call from the sources.
          if (fiber.getFiberRef(FiberRef.currentMinimumLogLevel).ordinal <= debugOrdinal) {
            return Effect.map(resolveFrom(id, account, false), (found) => found.credential)
          }
          const services = fiber.currentDefaultServices
          const configProvider = Context.get(services, ConfigProvider.ConfigProvider)
          const clock = Context.get(services, Clock.Clock)
          return Effect.flatMap(
            this.look(services, configProvider, clock),
            // A caller with another ConfigProvider or Clock than the one whose look it shared reads for itself.
            (answer) =>
              answer.configProvider === configProvider && answer.clock === clock
                ? answer.exit
                : Effect.map(resolveFrom(id, account, false), (found) => found.credential)
          )
        })
      }

      /** Reads the sources (shared with concurrent callers) and remembers the answer. */
      look(
        services: Context.Context<never>,
        configProvider: ConfigProvider.ConfigProvider,
        clock: Clock.Clock
      ): Effect.Effect<Answer, AuthError> {
        return flights.run(
          this.key,
          Effect.suspend(() => {
            const revision = store.revision()
            const from = clock.unsafeCurrentTimeMillis()
            return Effect.map(resolveFrom(this.id, this.account, false), (found) => {
              const until = Math.min(found.until, from + revalidateMillis)
              const answer: Answer = {
                exit: Exit.succeed(found.credential) as Exit.Success<Credential, never>,
                services,
                configProvider,
                clock,
                revision,
                from,
                until
              }
              this.answer = answer
              return answer
            })
          }),
          Effect.suspend(() => this.look(services, configProvider, clock))
        )
      }

      /** The remembered answer when it holds for the fiber running now. */
      held(): Answer | undefined {
        const answer = this.answer
        if (answer === undefined || answer.revision !== store.revision()) return undefined
        const current = Fiber.getCurrentFiber()
        if (Option.isNone(current)) return undefined
        const fiber = current.value
        if (fiber.getFiberRef(FiberRef.currentMinimumLogLevel).ordinal <= debugOrdinal) return undefined
        const services = fiber.currentDefaultServices
        if (
          services !== answer.services &&
          (Context.get(services, ConfigProvider.ConfigProvider) !== answer.configProvider ||
            Context.get(services, Clock.Clock) !== answer.clock)
        ) return undefined
        const now = answer.clock.unsafeCurrentTimeMillis()
        return answer.from <= now && now < answer.until ? answer : undefined
      }

      commit(): Effect.Effect<Credential, AuthError> {
        return this.held()?.exit ?? this.fresh
      }

      // `yield* resolver.resolve(…)` in Effect.gen, the usual way to call it: when the answer
      // holds, the generator gets it at once, with no step through the fiber's run loop.
      override [Symbol.iterator](): Answering {
        return new Answering(this)
      }
    }

    /** The iterator behind `yield*` (Effect's SingleShotGen, plus the shortcut). */
    class Answering {
      private called = false
      constructor(readonly prepared: Prepared) {}
      next(value: Credential): IteratorResult<YieldWrap<Effect.Effect<Credential, AuthError>>, Credential> {
        if (this.called) return { value, done: true }
        this.called = true
        const held = this.prepared.held()
        return held !== undefined
          ? { value: held.exit.value, done: true }
          : { value: new YieldWrap(this.prepared.fresh), done: false }
      }
      return(value: Credential): IteratorResult<never, Credential> {
        return { value, done: true }
      }
      throw(error: unknown): never {
        throw error
      }
      [Symbol.iterator](): Answering {
        return this
      }
    }

    const flights = SingleFlight.make<Answer, AuthError>()
    const prepared = new Map<string, Prepared>()

    const resolve = (id: string, opts?: ResolveOptions): Effect.Effect<Credential, AuthError> => {
      const account = opts?.account
      if (opts?.forceRefresh === true) return Effect.map(resolveFrom(id, account, true), (found) => found.credential)
      const key = account === undefined ? id : `${id}\u0000${account}`
      let effect = prepared.get(key)
      if (effect === undefined) {
        effect = new Prepared(key, id, account)
        prepared.set(key, effect)
      }
      return effect
    }

    const sourcesOf = (provider: ProviderConfig, account: string | undefined) =>
      Effect.map(Effect.all(plan(provider, account)), (steps) => steps.flat())

    const sources = (id: string, opts: SourcesOptions = {}) =>
      Effect.flatMap(registry.get(id), (provider) => sourcesOf(provider, opts.account))

    const available = (opts: AvailableOptions = {}) =>
      Effect.gen(function*() {
        const priority = opts.priority ?? config.file.priority ?? []
        const rank = (p: ProviderConfig, index: number) => {
          const i = priority.indexOf(p.id)
          return i === -1 ? priority.length + index : i
        }
        const ordered = registry.list
          .map((provider, index) => ({ provider, rank: rank(provider, index) }))
          .sort((a, b) => a.rank - b.rank)
        const out: Array<Available> = []
        for (const { provider } of ordered) {
          // What `resolve` would do, offline: the first eligible source that needs no new sign-in.
          const source = (yield* sourcesOf(provider, undefined)).find((s) => s.eligible && s.usable)
          if (source !== undefined) out.push({ provider, source })
        }
        yield* Effect.logDebug("available providers").pipe(
          Effect.annotateLogs({ providers: out.map((a) => `${a.provider.id}:${a.source._tag}`).join(",") || "none" })
        )
        return out
      })

    return CredentialResolver.of({ resolve, sources, available })
  })

export const layer: Layer.Layer<
  CredentialResolver,
  never,
  TokenStore | ProviderRegistry | AuthConfig | Refresher
> = Layer.effect(CredentialResolver, make())

/** With another account chooser (a runtime's own). */
export const layerWith = (
  options: MakeOptions
): Layer.Layer<CredentialResolver, never, TokenStore | ProviderRegistry | AuthConfig | Refresher> =>
  Layer.effect(CredentialResolver, make(options))
