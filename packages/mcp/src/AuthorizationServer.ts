/**
 * The authorization server an MCP server names, discovered as the MCP authorization spec
 * says: RFC 8414 and OpenID Connect discovery in its order (path-aware), the document's
 * `issuer` equal to the one the URLs were built from and every endpoint https (or http on
 * loopback), both core's `discover`; PKCE `S256` advertised, this profile's own rule. This is a
 * `ProviderRegistry.DiscoveryProfile`: the registry runs it, once per issuer and process.
 */
import { type DiscoveryError, McpDiscoveryError, type Provider, type ProviderRegistry } from "@agent-auth/core"
import { Effect } from "effect"
import { secureUrlProblem } from "./internal/http.js"

/**
 * The metadata URLs, in the spec's order. With a path (`https://as.example/tenant1`):
 * `/.well-known/oauth-authorization-server/tenant1`, `/.well-known/openid-configuration/tenant1`,
 * `/tenant1/.well-known/openid-configuration`. Without: the first two without a path.
 */
export const metadataUrls = (issuer: string): ReadonlyArray<string> => {
  const u = new URL(issuer)
  const path = u.pathname.replace(/\/+$/, "")
  if (path === "") {
    return [`${u.origin}/.well-known/oauth-authorization-server`, `${u.origin}/.well-known/openid-configuration`]
  }
  return [
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
    `${u.origin}/.well-known/openid-configuration${path}`,
    `${u.origin}${path}/.well-known/openid-configuration`
  ]
}

/** MCP: PKCE is required, and a server that does not advertise `S256` is refused (not assumed). */
export const requireS256 = (doc: Provider.AuthServerMetadata): string | undefined =>
  doc.code_challenge_methods_supported === undefined
    ? "its metadata has no code_challenge_methods_supported, so PKCE S256 support is not known (the MCP spec requires refusing it)"
    : doc.code_challenge_methods_supported.includes("S256")
    ? undefined
    : `its code_challenge_methods_supported (${doc.code_challenge_methods_supported.join(", ") || "empty"}) lacks S256`

/**
 * The MCP discovery profile for `ProviderRegistry` (see the module comment). Every endpoint
 * being https (or http on loopback) is core's rule (`ProviderRegistry.endpointProblem`),
 * which `discover` applies before this check, for every profile.
 */
export const profile: ProviderRegistry.DiscoveryProfile = {
  name: "mcp",
  urls: metadataUrls,
  check: requireS256,
  // As for the protected-resource metadata: a redirect could move discovery to another host.
  redirects: "refuse"
}

/** A discovery failure, told as the MCP server's (the person named the server, not the issuer). */
export const asServerError = (serverUrl: string) => (e: DiscoveryError): McpDiscoveryError =>
  new McpDiscoveryError({ server: serverUrl, reason: `its authorization server ${e.issuer}: ${e.reason}` })

/** The issuer must itself be https (or http on loopback) before anything is fetched from it. */
export const checkIssuer = (issuer: string, serverUrl: string): Effect.Effect<string, McpDiscoveryError> => {
  const problem = secureUrlProblem("the authorization server", issuer)
  return problem === undefined ? Effect.succeed(issuer) : Effect.fail(new McpDiscoveryError({ server: serverUrl, reason: problem }))
}
