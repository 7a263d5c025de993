/**
 * The providers agent-auth knows: the built-ins, overridden and extended by config.json,
 * and each one's authorization-server endpoints (derived for OpenAI, discovered for OIDC
 * issuers, with the RFC 8414 §3.3 / OIDC Discovery issuer-equality check).
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Clock, Context, Effect, Layer, Option, type ParseResult, Schema } from "effect"
import { AuthConfig, urlProblem } from "./AuthConfig.js"
import type { ProviderOverride } from "./AuthConfig.js"
import { ConfigInvalid, DiscoveryError, UnknownProvider } from "./Errors.js"
import { isRedirect, readJsonBounded, tooLargeReason, withoutRedirects } from "./internal/http.js"
import { sanitize } from "./internal/text.js"
import { AuthServerMetadata, builtins, oidcDefaults, ProviderConfig } from "./Provider.js"

export interface ProviderRegistryShape {
  /** Built-ins first, then configured ones, each with config.json's overrides applied. */
  readonly list: ReadonlyArray<ProviderConfig>
  /** `list`, then the providers a `ProviderSource` knows now (MCP servers signed in to). */
  readonly listAll: Effect.Effect<ReadonlyArray<ProviderConfig>, ConfigInvalid>
  /** By id; a `ProviderSource` may also know its providers by another name (an MCP server's URL). */
  readonly get: (id: string) => Effect.Effect<ProviderConfig, UnknownProvider | ConfigInvalid>
  /** The provider's endpoints; discovery happens once per process and issuer. */
  readonly metadata: (provider: ProviderConfig) => Effect.Effect<AuthServerMetadata, DiscoveryError>
}

export class ProviderRegistry extends Context.Tag("@agent-auth/core/ProviderRegistry")<ProviderRegistry, ProviderRegistryShape>() {}

/**
 * How an issuer's metadata is found and judged: the URLs tried in order (the first that
 * answers with metadata is used), and a rule the document must pass besides issuer equality.
 */
export interface DiscoveryProfile {
  readonly name: string
  readonly urls: (issuer: string) => ReadonlyArray<string>
  /** Why the document is refused (naming the field), or undefined when it is accepted. */
  readonly check: (doc: AuthServerMetadata) => string | undefined
  /** `refuse`: a metadata URL that answers with a redirect is not followed (a failure, as a 404 is). Default: followed. */
  readonly redirects?: "follow" | "refuse"
}

/** OIDC discovery, then RFC 8414 (`/.well-known/oauth-authorization-server` + the issuer's path). */
export const oidcProfile: DiscoveryProfile = {
  name: "oidc",
  urls: (issuer) => {
    const base = issuer.replace(/\/+$/, "")
    const url = new URL(base)
    return [
      `${base}/.well-known/openid-configuration`,
      `${url.origin}/.well-known/oauth-authorization-server${url.pathname === "/" ? "" : url.pathname}`
    ]
  },
  check: () => undefined
}

/**
 * Providers known only at run time, asked for an id the built-ins and config.json lack:
 * the MCP servers signed in to (`@agent-auth/mcp`). Its providers are discovered with its
 * `profile`.
 */
export interface ProviderSourceShape {
  /** The provider named `id` (or known by that URL), if the source has it. */
  readonly get: (id: string) => Effect.Effect<Option.Option<ProviderConfig>, ConfigInvalid>
  readonly list: Effect.Effect<ReadonlyArray<ProviderConfig>, ConfigInvalid>
  /** Which providers are its own (their kind), and how their issuers are discovered. */
  readonly kind: ProviderConfig["kind"]
  readonly profile: DiscoveryProfile
}

export class ProviderSource extends Context.Tag("@agent-auth/core/ProviderSource")<ProviderSource, ProviderSourceShape>() {}

/** A built-in (or nothing) with config.json's fields on top. */
export const applyOverride = (
  id: string,
  base: ProviderConfig | undefined,
  o: ProviderOverride,
  source: string
): Effect.Effect<ProviderConfig, ConfigInvalid> => {
  if (base === undefined && (o.kind ?? "oidc") !== "oidc") {
    return Effect.fail(new ConfigInvalid({ source, field: `providers.${id}.kind`, reason: `a new provider must be "oidc"` }))
  }
  const from: Omit<ProviderConfig, "canLogin" | "takesApiKey"> = base ?? { id, displayName: id, ...oidcDefaults }
  const merged = {
    ...from,
    ...o,
    // Shown in every message about the provider: one line, no escape sequences.
    ...(o.displayName === undefined ? {} : { displayName: sanitize(o.displayName, 100) }),
    id,
    redirect: { ...from.redirect, ...o.redirect },
    endpoints: { ...from.endpoints, ...o.endpoints }
  }
  for (const field of ["issuer", "clientId"] as const) {
    if (merged.kind !== "api_key" && merged.kind !== "google_adc" && merged[field] === undefined) {
      return Effect.fail(new ConfigInvalid({ source, field: `providers.${id}.${field}`, reason: "required for an OAuth provider" }))
    }
  }
  // The class constructor validates the merged fields.
  return Effect.try({
    try: () => new ProviderConfig(merged as ConstructorParameters<typeof ProviderConfig>[0]),
    catch: (e) => new ConfigInvalid({ source, field: `providers.${id}`, reason: e instanceof Error ? e.message : String(e) })
  })
}

/** Endpoints a provider's kind implies, before any override (OpenAI's fixed paths). */
const derivedMetadata = (p: ProviderConfig): AuthServerMetadata | undefined => {
  if (p.kind !== "openai" || p.issuer === undefined) return undefined
  const base = p.issuer.replace(/\/+$/, "")
  return AuthServerMetadata.make({
    issuer: base,
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/oauth/token`,
    revocation_endpoint: `${base}/oauth/revoke`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    id_token_signing_alg_values_supported: ["RS256"]
  })
}

const withOverrides = (p: ProviderConfig, m: AuthServerMetadata): AuthServerMetadata => {
  const e = p.endpoints ?? {}
  return AuthServerMetadata.make({
    ...m,
    authorization_endpoint: e.authorization ?? m.authorization_endpoint,
    token_endpoint: e.token ?? m.token_endpoint,
    ...(e.revocation ?? m.revocation_endpoint ? { revocation_endpoint: e.revocation ?? m.revocation_endpoint } : {}),
    ...(e.jwks ?? m.jwks_uri ? { jwks_uri: e.jwks ?? m.jwks_uri } : {}),
    ...(e.deviceAuthorization ?? m.device_authorization_endpoint
      ? { device_authorization_endpoint: e.deviceAuthorization ?? m.device_authorization_endpoint }
      : {})
  })
}

/** Every endpoint a document can name; each one gets a secret or decides what is trusted. */
const endpointFields = [
  "authorization_endpoint",
  "token_endpoint",
  "revocation_endpoint",
  "device_authorization_endpoint",
  "registration_endpoint",
  "jwks_uri"
] as const

/**
 * The first endpoint of discovered metadata that is not https (or http on loopback), with
 * why: an https issuer naming an http token endpoint would send codes and tokens in clear.
 */
export const endpointProblem = (doc: AuthServerMetadata): { readonly field: string; readonly problem: string } | undefined => {
  for (const field of endpointFields) {
    const value = doc[field]
    if (value === undefined) continue
    const problem = urlProblem(value)
    if (problem !== undefined) return { field, problem }
  }
  return undefined
}

/**
 * What the network said when nothing answered ("connection refused at 127.0.0.1:8080"),
 * from the system error under fetch's own; undefined when something did answer.
 */
const unreachableReason = (cause: unknown, url: URL): string | undefined => {
  const where = `${url.hostname}:${url.port === "" ? (url.protocol === "https:" ? "443" : "80") : url.port}`
  for (let e = cause, depth = 0; typeof e === "object" && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (code === "ECONNREFUSED") return `connection refused at ${where}`
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `the host ${url.hostname} was not found`
    if (code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return `the connection to ${where} timed out`
    if (code === "ECONNRESET") return `the connection to ${where} was reset`
    if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return `no route to ${where}`
  }
  return undefined
}

/**
 * Metadata from the profile's URLs, in order (OIDC discovery, then RFC 8414, by default).
 * The document's `issuer` must equal the configured one exactly (a mix-up or a hostile
 * document would otherwise redirect tokens), and the profile's own rule must pass.
 */
export const discover = (
  issuer: string,
  profile: DiscoveryProfile = oidcProfile
): Effect.Effect<AuthServerMetadata, DiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const base = issuer.replace(/\/+$/, "")
    const fetchDoc = (url: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (started) => {
        const trace = (outcome: Record<string, string | number>) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.logDebug(`GET ${url}`).pipe(
              Effect.annotateLogs({ issuer, method: "GET", endpoint: url, ...outcome, duration_ms: now - started })
            ))
        const request = client.execute(HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson))
        return (profile.redirects === "refuse" ? withoutRedirects(request) : request).pipe(
          Effect.tapBoth({
            onSuccess: (response) => trace({ status: response.status }),
            onFailure: (e) => trace(e._tag === "ResponseError" ? { status: e.response.status } : { failed: e.reason })
          }),
          Effect.flatMap((response) => readJsonBounded(response)),
          Effect.flatMap((json): Effect.Effect<AuthServerMetadata, { readonly _tag: "NotJson"; readonly message: string } | ParseResult.ParseError> =>
            Option.isNone(json)
              ? Effect.fail({ _tag: "NotJson", message: "not JSON" })
              : Schema.decodeUnknown(AuthServerMetadata)(json.value)
          ),
          Effect.scoped
        )
      })
    let urls: ReadonlyArray<string>
    try {
      urls = profile.urls(issuer)
    } catch {
      return yield* new DiscoveryError({ issuer, reason: "the issuer is not a URL" })
    }
    const [first, ...rest] = urls
    if (first === undefined) return yield* new DiscoveryError({ issuer, reason: "no metadata URL to try" })
    const url = new URL(first)
    const doc = yield* rest.reduce(
      (acc, next) => Effect.orElse(acc, () => fetchDoc(next)),
      fetchDoc(first)
    ).pipe(
      Effect.mapError((e) => {
        const unreachable = e._tag === "RequestError" ? unreachableReason(e.cause, url) : undefined
        const why = e._tag === "ParseError"
          ? "not valid metadata"
          : e._tag === "TooLarge"
          ? tooLargeReason(e.limit)
          : e._tag === "ResponseError" && isRedirect(e.response.status)
          ? `HTTP ${e.response.status}, a redirect, not followed`
          : e.message
        return new DiscoveryError({
          issuer,
          reason: `no usable metadata at ${urls.join(" or ")} (${why})`,
          ...(unreachable === undefined ? {} : { unreachable })
        })
      })
    )
    if (doc.issuer !== issuer && doc.issuer !== base) {
      yield* Effect.logDebug("discovery refused").pipe(Effect.annotateLogs({ issuer, rule: "issuer equality (RFC 8414 §3.3)" }))
      return yield* new DiscoveryError({ issuer, reason: `the metadata names the issuer "${doc.issuer}", not the configured one` })
    }
    const refused = endpointProblem(doc)
    if (refused !== undefined) {
      yield* Effect.logDebug("discovery refused").pipe(Effect.annotateLogs({ issuer, rule: "https endpoints", field: refused.field }))
      return yield* new DiscoveryError({ issuer, reason: `the metadata's ${refused.field} ${refused.problem}` })
    }
    const problem = profile.check(doc)
    if (problem !== undefined) {
      yield* Effect.logDebug("discovery refused").pipe(Effect.annotateLogs({ issuer, rule: profile.name, problem }))
      return yield* new DiscoveryError({ issuer, reason: problem })
    }
    yield* Effect.logDebug("discovery accepted").pipe(
      Effect.annotateLogs({ issuer, rule: "issuer equality (RFC 8414 §3.3)", token_endpoint: doc.token_endpoint })
    )
    return doc
  })

/** The registry over `base` providers (the built-ins, plus any a program adds), with config.json applied. */
export const make = (base: ReadonlyArray<ProviderConfig> = builtins) => Effect.gen(function*() {
  const config = yield* AuthConfig
  const http = yield* HttpClient.HttpClient
  const source = Option.getOrUndefined(yield* Effect.serviceOption(ProviderSource))
  // MCP servers (kind `mcp`) are the ProviderSource's to read (@agent-auth/mcp); a program
  // without one ignores them rather than refusing a config.json it shares with the CLI.
  const overrides = Object.fromEntries(
    Object.entries(config.file.providers ?? {}).filter(([, o]) => o.kind !== "mcp" && (source === undefined || o.kind !== source.kind))
  )
  const list: Array<ProviderConfig> = []
  for (const b of base) {
    const o = overrides[b.id]
    list.push(o === undefined ? b : yield* applyOverride(b.id, b, o, config.configPath))
  }
  for (const [id, o] of Object.entries(overrides)) {
    if (base.some((b) => b.id === id)) continue
    list.push(yield* applyOverride(id, undefined, o, config.configPath))
  }
  const cache = new Map<string, AuthServerMetadata>()
  const metadata = (p: ProviderConfig): Effect.Effect<AuthServerMetadata, DiscoveryError> => {
    const derived = derivedMetadata(p)
    if (derived !== undefined) return Effect.succeed(withOverrides(p, derived))
    if (p.issuer === undefined) {
      return Effect.fail(new DiscoveryError({ issuer: p.id, reason: `${p.id} has no issuer (it takes API keys only)` }))
    }
    const issuer = p.issuer
    const profile = source !== undefined && p.kind === source.kind ? source.profile : oidcProfile
    const cacheKey = `${profile.name} ${issuer}`
    const hit = cache.get(cacheKey)
    if (hit !== undefined) return Effect.succeed(withOverrides(p, hit))
    // Cached only once it succeeds, so a passing network fault is retried next time.
    return discover(issuer, profile).pipe(
      Effect.provideService(HttpClient.HttpClient, http),
      Effect.tap((m) => Effect.sync(() => cache.set(cacheKey, m))),
      Effect.map((m) => withOverrides(p, m))
    )
  }
  const unknown = (id: string, more: ReadonlyArray<ProviderConfig>) =>
    new UnknownProvider({ provider: id, known: [...list, ...more].map((x) => x.id) })
  return ProviderRegistry.of({
    list,
    listAll: source === undefined ? Effect.succeed(list) : Effect.map(source.list, (more) => [...list, ...more]),
    get: (id) => {
      const p = list.find((x) => x.id === id)
      if (p !== undefined) return Effect.succeed(p)
      if (source === undefined) return Effect.fail(unknown(id, []))
      return Effect.flatMap(source.get(id), Option.match({
        onSome: Effect.succeed,
        onNone: () => Effect.flatMap(source.list, (more) => Effect.fail(unknown(id, more)))
      }))
    },
    metadata
  })
})

export const layer: Layer.Layer<ProviderRegistry, ConfigInvalid, AuthConfig | HttpClient.HttpClient> = Layer.effect(
  ProviderRegistry,
  make()
)

/** The built-ins plus `extra` (the CLI's `demo`, a runtime's own); config.json can override those too. */
export const layerWith = (
  extra: ReadonlyArray<ProviderConfig>
): Layer.Layer<ProviderRegistry, ConfigInvalid, AuthConfig | HttpClient.HttpClient> =>
  Layer.effect(ProviderRegistry, make([...builtins, ...extra]))
