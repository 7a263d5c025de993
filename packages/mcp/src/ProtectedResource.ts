/**
 * The MCP server as an OAuth protected resource (RFC 9728, MCP authorization): what its
 * 401 says, where its metadata is, which authorization server it names, and the
 * `resource` value a token is asked for. Each rule is a named function that fails closed.
 */
import type { HttpClient } from "@effect/platform"
import { McpDiscoveryError } from "@agent-auth/core"
import { Effect, Option, Schema } from "effect"
import { getJson, secureUrlProblem } from "./internal/http.js"

/** What a `WWW-Authenticate: Bearer …` challenge says (RFC 6750 §3, RFC 9728 §5.1). */
export interface Challenge {
  readonly resourceMetadata?: string | undefined
  /** Scopes the server asks for, space-separated in the header. */
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly error?: string | undefined
  readonly errorDescription?: string | undefined
}

/** RFC 9728 §2: the fields a client uses; others are ignored. */
export const ProtectedResourceMetadata = Schema.Struct({
  resource: Schema.String,
  authorization_servers: Schema.optional(Schema.Array(Schema.String)),
  scopes_supported: Schema.optional(Schema.Array(Schema.String)),
  bearer_methods_supported: Schema.optional(Schema.Array(Schema.String))
})
export type ProtectedResourceMetadata = typeof ProtectedResourceMetadata.Type

/** What discovery found: the metadata, where it came from, and the resource to ask tokens for. */
export interface Discovered {
  readonly metadata: ProtectedResourceMetadata
  readonly metadataUrl: string
  /** The `resource` parameter for authorization, token and refresh requests (see `resourceFor`). */
  readonly resource: string
  /** The authorization server's issuer identifier (the first the metadata lists). */
  readonly issuer: string
}

// auth-param = token BWS "=" BWS ( token / quoted-string ) (RFC 9110 §11.2)
const PARAM = /([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([!#$%&'*+./^_`|~0-9A-Za-z:-]+))/y

/**
 * The Bearer challenge of a `WWW-Authenticate` header, or undefined when it has none.
 * Other schemes in the same header (`Basic realm=…, Bearer …`) are skipped.
 */
export const parseChallenge = (header: string | null | undefined): Challenge | undefined => {
  if (header === null || header === undefined) return undefined
  const at = /(?:^|[\s,])Bearer(?:\s+|$)/i.exec(header)
  if (at === null) return undefined
  let i = at.index + at[0].length
  const params: Record<string, string> = {}
  while (i < header.length) {
    while (i < header.length && /[\s,]/.test(header[i]!)) i++
    PARAM.lastIndex = i
    const m = PARAM.exec(header)
    // A token not followed by "=" starts the next challenge.
    if (m === null) break
    const name = m[1]!.toLowerCase()
    if (params[name] === undefined) params[name] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]!
    i = PARAM.lastIndex
  }
  const scope = params.scope?.split(/\s+/).filter((s) => s.length > 0)
  return {
    resourceMetadata: params.resource_metadata,
    scopes: scope === undefined || scope.length === 0 ? undefined : scope,
    error: params.error,
    errorDescription: params.error_description
  }
}

/**
 * The canonical URI of an MCP server (RFC 8707 §2, MCP "Canonical Server URI"): lowercase
 * scheme and host, no fragment, and no `/` added to a bare origin.
 */
export const canonicalUri = (serverUrl: string): string => {
  const u = new URL(serverUrl)
  return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}${u.search}`
}

/** RFC 9728 §3.1: the well-known URIs for a server URL, the path-aware one first, then the root. */
export const wellKnownUrls = (serverUrl: string): ReadonlyArray<string> => {
  const u = new URL(serverUrl)
  const root = `${u.origin}/.well-known/oauth-protected-resource`
  const path = u.pathname.replace(/\/+$/, "")
  return path === "" ? [root] : [`${root}${path}`, root]
}

/**
 * Whether the metadata's `resource` identifies this server: same origin, and its path a
 * prefix of the server URL's path on a segment boundary (`/mcp` for `/mcp/v1`, not `/m`).
 */
export const identifiesServer = (resource: string, serverUrl: string): boolean => {
  let r: URL
  let s: URL
  try {
    r = new URL(resource)
    s = new URL(serverUrl)
  } catch {
    return false
  }
  if (r.origin !== s.origin || r.origin === "null" || r.hash !== "") return false
  const prefix = r.pathname.replace(/\/+$/, "")
  return prefix === "" || s.pathname === prefix || s.pathname.startsWith(`${prefix}/`)
}

/**
 * The `resource` a token is asked for: the metadata's string exactly as published (never
 * re-serialised: a URL parser would add `/` to a bare origin, and a strict server compares
 * strings) when it identifies this server, else the server's canonical URI.
 */
export const resourceFor = (metadata: ProtectedResourceMetadata | undefined, serverUrl: string): string =>
  metadata !== undefined && identifiesServer(metadata.resource, serverUrl) ? metadata.resource : canonicalUri(serverUrl)

/**
 * The authorization server the metadata names: the first of `authorization_servers`, which
 * must be https (or http on loopback). Refused when there is none.
 */
export const authorizationServer = (
  metadata: ProtectedResourceMetadata,
  serverUrl: string
): Effect.Effect<string, McpDiscoveryError> => {
  const issuer = metadata.authorization_servers?.[0]
  if (issuer === undefined) {
    return Effect.fail(new McpDiscoveryError({ server: serverUrl, reason: "its protected-resource metadata lists no authorization_servers" }))
  }
  const problem = secureUrlProblem("authorization_servers[0] of its protected-resource metadata", issuer)
  return problem === undefined ? Effect.succeed(issuer) : Effect.fail(new McpDiscoveryError({ server: serverUrl, reason: problem }))
}

/** One metadata document: fetched (no redirect, bounded), decoded; None when the URL has none (not 200). */
export const fetchMetadata = (
  url: string,
  serverUrl: string
): Effect.Effect<Option.Option<ProtectedResourceMetadata>, McpDiscoveryError, HttpClient.HttpClient> =>
  getJson(url).pipe(
    Effect.mapError((reason) => new McpDiscoveryError({ server: serverUrl, reason: `${url}: ${reason}` })),
    Effect.flatMap(({ json, status }) =>
      status !== 200
        ? Effect.succeed(Option.none())
        : Schema.decodeUnknown(ProtectedResourceMetadata)(json).pipe(
          Effect.map(Option.some),
          Effect.mapError(() =>
            new McpDiscoveryError({ server: serverUrl, reason: `${url} is not protected-resource metadata (no "resource")` })
          )
        )
    )
  )

/**
 * RFC 9728 discovery for `serverUrl`: the challenge's `resource_metadata` first (it must be
 * https, or http on loopback), else the well-known URIs, path first, then root. A document
 * whose `resource` does not identify this server is not used; none that does is a refusal.
 */
export const discover = (
  serverUrl: string,
  challenge?: Challenge | undefined
): Effect.Effect<Discovered, McpDiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const fromHeader = challenge?.resourceMetadata
    if (fromHeader !== undefined) {
      const problem = secureUrlProblem("resource_metadata in the WWW-Authenticate header", fromHeader)
      if (problem !== undefined) return yield* new McpDiscoveryError({ server: serverUrl, reason: problem })
    }
    const candidates = fromHeader !== undefined ? [fromHeader] : wellKnownUrls(serverUrl)
    const foreign: Array<string> = []
    for (const url of candidates) {
      const found = yield* fetchMetadata(url, serverUrl)
      if (Option.isNone(found)) continue
      const metadata = found.value
      // RFC 9728 §3.3: metadata for another resource MUST NOT be used (its authorization
      // server would get a login meant for this one). "Identifies" is same origin and a path
      // prefix, as the MCP SDKs and draft-ietf rfc9728bis allow. `resource_metadata` itself may
      // be on any https origin: this check, not its host, binds the document to the server.
      if (!identifiesServer(metadata.resource, serverUrl)) {
        foreign.push(`${url} describes "${metadata.resource}", not this server`)
        continue
      }
      const issuer = yield* authorizationServer(metadata, serverUrl)
      const resource = resourceFor(metadata, serverUrl)
      yield* Effect.logDebug("protected-resource metadata accepted").pipe(
        Effect.annotateLogs({
          server: serverUrl,
          metadata: url,
          issuer,
          resource,
          rule: "resource as published"
        })
      )
      return { metadata, metadataUrl: url, resource, issuer }
    }
    return yield* new McpDiscoveryError({
      server: serverUrl,
      reason: foreign.length > 0
        ? `its protected-resource metadata is for another resource (${foreign.join("; ")}), so it is not used (RFC 9728 §3.3)`
        : `no protected-resource metadata at ${candidates.join(" or ")}`
    })
  })
