/**
 * Settings: the home folder, the store kind, time limits, and `config.json`.
 * Environment (through Effect `Config`) wins over `config.json`, which wins over defaults.
 */
import { FileSystem } from "@effect/platform"
import { Config, Context, Duration, Effect, Either, Layer, Option, ParseResult, Schema } from "effect"
import { ProviderId, Secret } from "./Domain.js"
import { ConfigInvalid } from "./Errors.js"
import { CredentialMode, EndpointOverrides, isLoopbackUrl, ProviderKind } from "./Provider.js"

export const StoreKind = Schema.Literal("file", "keyring", "auto", "codex", "memory", "postgres", "sqlite")
export type StoreKind = typeof StoreKind.Type

/** A provider entry in config.json: every field optional, each overriding the built-in's. */
export const ProviderOverride = Schema.Struct({
  kind: Schema.optional(ProviderKind),
  displayName: Schema.optional(Schema.String),
  issuer: Schema.optional(Schema.String),
  clientId: Schema.optional(Schema.String),
  clientSecret: Schema.optional(Secret),
  scopes: Schema.optional(Schema.Array(Schema.String)),
  audience: Schema.optional(Schema.String),
  authorizeParams: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  redirect: Schema.optional(Schema.Struct({
    host: Schema.optional(Schema.String),
    path: Schema.optional(Schema.String),
    ports: Schema.optional(Schema.Array(Schema.Int.pipe(Schema.between(0, 65535))))
  })),
  endpoints: Schema.optional(EndpointOverrides),
  refreshFormat: Schema.optional(Schema.Literal("form", "json")),
  revokeFormat: Schema.optional(Schema.Literal("form", "json")),
  device: Schema.optional(Schema.Literal("rfc8628", "openai", "none")),
  apiBaseUrl: Schema.optional(Schema.String),
  apiKeyBaseUrl: Schema.optional(Schema.String),
  apiKeyEnv: Schema.optional(Schema.Array(Schema.String)),
  apiKeyHeader: Schema.optional(Schema.String),
  mode: Schema.optional(CredentialMode),
  originator: Schema.optional(Schema.String),
  /** kind `mcp`: the MCP server's URL. */
  url: Schema.optional(Schema.String),
  /** kind `mcp`: a Client ID Metadata Document URL, sent as the `client_id` (never fetched by us). */
  clientMetadataUrl: Schema.optional(Schema.String)
})
export type ProviderOverride = typeof ProviderOverride.Type

/** The whole of config.json. Unknown fields are refused (a typo must not be ignored silently). */
export const ConfigFile = Schema.Struct({
  /** The SQL stores are chosen in the environment only, beside their URL and key (`AGENT_AUTH_STORE`). */
  store: Schema.optional(Schema.Literal("file", "keyring", "auto", "codex", "memory")),
  refreshSkewSeconds: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  apiKeys: Schema.optional(Schema.Record({ key: ProviderId, value: Secret })),
  providers: Schema.optional(Schema.Record({ key: ProviderId, value: ProviderOverride })),
  /** Provider order for `CredentialResolver.available`. */
  priority: Schema.optional(Schema.Array(Schema.String)),
  /** The default account per provider when several are stored (`agent-auth use <provider> <account>`). */
  defaults: Schema.optional(Schema.Record({ key: ProviderId, value: Schema.String }))
})
export type ConfigFile = typeof ConfigFile.Type

export interface AuthConfigShape {
  readonly home: string
  readonly configPath: string
  readonly store: StoreKind
  /** Refresh when less than this is left on the access token. */
  readonly refreshSkew: Duration.Duration
  readonly loginTimeout: Duration.Duration
  /** Bound on one HTTP exchange with a provider. */
  readonly httpTimeout: Duration.Duration
  /** How long a store waits for another process's lock; longer than a token request may take. */
  readonly lockTimeout: Duration.Duration
  readonly file: ConfigFile
}

export class AuthConfig extends Context.Tag("@agent-auth/core/AuthConfig")<AuthConfig, AuthConfigShape>() {}

export const defaults = {
  refreshSkew: Duration.minutes(5),
  loginTimeout: Duration.minutes(5),
  httpTimeout: Duration.seconds(30),
  lockTimeout: Duration.seconds(90)
} as const

/** Build settings from values (tests, embedding runtimes). */
export const make = (options: Partial<AuthConfigShape> & { readonly home?: string } = {}): AuthConfigShape => {
  const home = options.home ?? "/nonexistent/.agent-auth"
  const file = options.file ?? {}
  return {
    home,
    configPath: options.configPath ?? `${home}/config.json`,
    store: options.store ?? file.store ?? "auto",
    refreshSkew: options.refreshSkew ??
      (file.refreshSkewSeconds === undefined ? defaults.refreshSkew : Duration.seconds(file.refreshSkewSeconds)),
    loginTimeout: options.loginTimeout ?? defaults.loginTimeout,
    httpTimeout: options.httpTimeout ?? defaults.httpTimeout,
    lockTimeout: options.lockTimeout ?? defaults.lockTimeout,
    file
  }
}

export const layerWith = (options: Parameters<typeof make>[0] = {}): Layer.Layer<AuthConfig> =>
  Layer.succeed(AuthConfig, make(options))

const fieldPath = (path: ReadonlyArray<PropertyKey>) => path.map(String).join(".") || "(root)"

/** Decode config.json text; every failure names the field. */
export const parseConfigFile = (text: string, source: string): Either.Either<ConfigFile, ConfigInvalid> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    // V8's message quotes the text around the fault, which may be part of an API key: keep only the position.
    const at = /position (\d+)/.exec((e as Error).message)?.[1]
    return Either.left(new ConfigInvalid({ source, field: "(root)", reason: at === undefined ? "not JSON" : `not JSON (at character ${at})` }))
  }
  return Schema.decodeUnknownEither(ConfigFile, { onExcessProperty: "error", errors: "first" })(json).pipe(
    Either.mapLeft((error) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      return new ConfigInvalid({
        source,
        field: fieldPath(issue?.path ?? []),
        reason: issue?.message ?? "invalid"
      })
    }),
    Either.flatMap((file) => checkUrls(file, source)),
    Either.flatMap((file) => checkAuthorizeParams(file, source))
  )
}

/**
 * Parameters of the authorization request that agent-auth sets itself: configured, they
 * would weaken it (`code_challenge_method=plain`), or break it (`state`, `redirect_uri`).
 */
export const protocolParams: ReadonlyArray<string> = [
  "state",
  "code_challenge",
  "code_challenge_method",
  "redirect_uri",
  "client_id",
  "response_type",
  "nonce",
  "scope",
  "resource"
]

/** Whether an `authorizeParams` key names a protocol parameter (in any case; any `code_challenge…`). */
export const isProtocolParam = (key: string): boolean => {
  const k = key.trim().toLowerCase()
  return protocolParams.includes(k) || k.startsWith("code_challenge")
}

const checkAuthorizeParams = (file: ConfigFile, source: string): Either.Either<ConfigFile, ConfigInvalid> => {
  for (const [id, p] of Object.entries(file.providers ?? {})) {
    const key = Object.keys(p.authorizeParams ?? {}).find(isProtocolParam)
    if (key !== undefined) {
      return Either.left(new ConfigInvalid({
        source,
        field: `providers.${id}.authorizeParams.${key}`,
        reason: `"${key}" is a protocol parameter agent-auth sets itself; remove it (scopes go in "scopes", the API in "audience")`
      }))
    }
  }
  return Either.right(file)
}

/** Plain http is refused for anything but loopback: tokens must not cross a network in clear. */
const checkUrls = (file: ConfigFile, source: string): Either.Either<ConfigFile, ConfigInvalid> => {
  for (const [id, p] of Object.entries(file.providers ?? {})) {
    const urls: Array<[string, string | undefined]> = [
      ["issuer", p.issuer],
      ["apiBaseUrl", p.apiBaseUrl],
      ["apiKeyBaseUrl", p.apiKeyBaseUrl],
      ["url", p.url],
      ["clientMetadataUrl", p.clientMetadataUrl],
      ...Object.entries(p.endpoints ?? {}).map(([k, v]) => [`endpoints.${k}`, v] as [string, string | undefined])
    ]
    for (const [field, value] of urls) {
      if (value === undefined) continue
      const problem = urlProblem(value)
      if (problem !== undefined) {
        return Either.left(new ConfigInvalid({ source, field: `providers.${id}.${field}`, reason: problem }))
      }
    }
  }
  return Either.right(file)
}

/** Why a provider URL is unacceptable, or undefined when it is fine. */
export const urlProblem = (value: string): string | undefined => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return `"${value}" is not a URL`
  }
  if (url.protocol === "https:") return undefined
  if (url.protocol === "http:" && isLoopbackUrl(url)) return undefined
  return `"${value}" must use https (plain http is accepted only on loopback)`
}

/**
 * The live settings: `AGENT_AUTH_HOME` (default `$HOME/.agent-auth`), `AGENT_AUTH_STORE`,
 * then `$AGENT_AUTH_HOME/config.json` when it exists.
 */
export const layer: Layer.Layer<AuthConfig, ConfigInvalid, FileSystem.FileSystem> = Layer.effect(
  AuthConfig,
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const env = yield* Effect.all({
      home: Config.option(Config.string("AGENT_AUTH_HOME")),
      userHome: Config.option(Config.string("HOME")),
      store: Config.option(Config.literal(...StoreKind.literals)("AGENT_AUTH_STORE"))
    }).pipe(
      Effect.mapError((e) => new ConfigInvalid({ source: "environment", field: "AGENT_AUTH_STORE", reason: String(e) }))
    )
    // An empty variable is unset (`AGENT_AUTH_HOME= cmd` must not make the current folder the home).
    const home = Option.getOrElse(
      Option.filter(env.home, (h) => h.length > 0),
      () => `${Option.getOrElse(Option.filter(env.userHome, (h) => h.length > 0), () => ".")}/.agent-auth`
    )
    const configPath = `${home}/config.json`
    const text = yield* fs.readFileString(configPath).pipe(
      Effect.map(Option.some),
      Effect.catchAll((e) =>
        e._tag === "SystemError" && e.reason === "NotFound"
          ? Effect.succeed(Option.none<string>())
          : Effect.flatMap(
            // A home that is a file is the variable's fault, not config.json's.
            Effect.orElseSucceed(Effect.map(fs.stat(home), (info) => info.type !== "Directory"), () => false),
            (homeIsFile) =>
              Effect.fail(
                homeIsFile
                  ? new ConfigInvalid({
                    source: "environment",
                    field: "AGENT_AUTH_HOME",
                    reason: `${home} is a file, not a folder; set AGENT_AUTH_HOME to a folder (it is created when missing)`
                  })
                  : new ConfigInvalid({ source: configPath, field: "(file)", reason: `it could not be read (${e.message})` })
              )
          )
      )
    )
    const file = Option.isNone(text) ? {} : yield* parseConfigFile(text.value, configPath)
    return make({
      home,
      configPath,
      file,
      ...(Option.isSome(env.store) ? { store: env.store.value } : {})
    })
  })
)
