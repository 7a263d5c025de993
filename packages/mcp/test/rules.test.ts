/** The spec's client rules, each a named function: challenge parsing, URLs, resource choice, AS checks. */
import { Provider, ProviderRegistry } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { AuthorizationServer, ClientRegistration, McpLogin, McpServers, ProtectedResource } from "@agent-auth/mcp"

const as = (fields: Partial<ConstructorParameters<typeof Provider.AuthServerMetadata>[0]> = {}) =>
  Provider.AuthServerMetadata.make({
    issuer: "https://as.example",
    authorization_endpoint: "https://as.example/authorize",
    token_endpoint: "https://as.example/token",
    code_challenge_methods_supported: ["S256"],
    ...fields
  })

describe("ProtectedResource", () => {
  it("parses a Bearer challenge: quoted and token values, escapes, other schemes around it", () => {
    expect(ProtectedResource.parseChallenge(
      `Basic realm="x", Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", scope="files:read files:write", error="invalid_token", error_description="a \\"quoted\\" word"`
    )).toEqual({
      resourceMetadata: "https://mcp.example/.well-known/oauth-protected-resource/mcp",
      scopes: ["files:read", "files:write"],
      error: "invalid_token",
      errorDescription: `a "quoted" word`
    })
    expect(ProtectedResource.parseChallenge(`Bearer error=insufficient_scope, scope=admin`)).toMatchObject({ error: "insufficient_scope", scopes: ["admin"] })
    expect(ProtectedResource.parseChallenge(`Bearer`)).toEqual({ resourceMetadata: undefined, scopes: undefined, error: undefined, errorDescription: undefined })
    expect(ProtectedResource.parseChallenge(`Basic realm="x"`)).toBeUndefined()
    expect(ProtectedResource.parseChallenge(undefined)).toBeUndefined()
  })

  it("canonical URI: lowercase scheme and host, no fragment, no slash added to a bare origin", () => {
    expect(ProtectedResource.canonicalUri("HTTPS://MCP.Example.COM/Mcp#frag")).toBe("https://mcp.example.com/Mcp")
    expect(ProtectedResource.canonicalUri("https://mcp.example.com")).toBe("https://mcp.example.com")
    expect(ProtectedResource.canonicalUri("https://mcp.example.com:8443/")).toBe("https://mcp.example.com:8443")
  })

  it("well-known URIs: path-aware first, then the root", () => {
    expect(ProtectedResource.wellKnownUrls("https://mcp.example/public/mcp")).toEqual([
      "https://mcp.example/.well-known/oauth-protected-resource/public/mcp",
      "https://mcp.example/.well-known/oauth-protected-resource"
    ])
    expect(ProtectedResource.wellKnownUrls("https://mcp.example/")).toEqual(["https://mcp.example/.well-known/oauth-protected-resource"])
  })

  it("resource: the published string when it identifies the server (same origin, path prefix), else the canonical URI", () => {
    const meta = (resource: string) => ({ resource })
    // Exactly as published: a bare origin keeps no trailing slash, one with it keeps it.
    expect(ProtectedResource.resourceFor(meta("https://mcp.example"), "https://mcp.example/mcp")).toBe("https://mcp.example")
    expect(ProtectedResource.resourceFor(meta("https://mcp.example/"), "https://mcp.example/mcp")).toBe("https://mcp.example/")
    expect(ProtectedResource.resourceFor(meta("https://mcp.example/mcp"), "https://mcp.example/mcp/v1")).toBe("https://mcp.example/mcp")
    // Not this server: another origin, a sibling path, a partial segment.
    expect(ProtectedResource.resourceFor(meta("https://evil.example/mcp"), "https://mcp.example/mcp")).toBe("https://mcp.example/mcp")
    expect(ProtectedResource.resourceFor(meta("https://mcp.example/other"), "https://mcp.example/mcp")).toBe("https://mcp.example/mcp")
    expect(ProtectedResource.resourceFor(meta("https://mcp.example/m"), "https://MCP.example/mcp")).toBe("https://mcp.example/mcp")
    expect(ProtectedResource.resourceFor(undefined, "https://mcp.example/mcp")).toBe("https://mcp.example/mcp")
  })
})

describe("AuthorizationServer", () => {
  it("metadata URLs in the MCP order, path-aware", () => {
    expect(AuthorizationServer.metadataUrls("https://as.example/tenant1")).toEqual([
      "https://as.example/.well-known/oauth-authorization-server/tenant1",
      "https://as.example/.well-known/openid-configuration/tenant1",
      "https://as.example/tenant1/.well-known/openid-configuration"
    ])
    expect(AuthorizationServer.metadataUrls("https://as.example")).toEqual([
      "https://as.example/.well-known/oauth-authorization-server",
      "https://as.example/.well-known/openid-configuration"
    ])
  })

  it("refuses a server without S256, or that does not say, and http endpoints off loopback", () => {
    expect(AuthorizationServer.profile.check(as())).toBeUndefined()
    expect(AuthorizationServer.profile.check(as({ code_challenge_methods_supported: undefined }))).toContain("no code_challenge_methods_supported")
    expect(AuthorizationServer.profile.check(as({ code_challenge_methods_supported: ["plain"] }))).toContain("lacks S256")
    // https endpoints are core's rule, which discovery applies before any profile's check.
    expect(ProviderRegistry.endpointProblem(as({ token_endpoint: "http://as.example/token" }))?.field).toBe("token_endpoint")
    expect(ProviderRegistry.endpointProblem(as({ registration_endpoint: "http://as.example/register" }))?.field).toBe("registration_endpoint")
    expect(ProviderRegistry.endpointProblem(as({ token_endpoint: "http://127.0.0.1:9/token" }))).toBeUndefined()
  })
})

describe("ClientRegistration", () => {
  it("a pre-registered client with a secret: basic unless the server offers only post; none without a secret", () => {
    expect(ClientRegistration.configuredMethod(true, as())).toBe("client_secret_basic")
    expect(ClientRegistration.configuredMethod(true, as({ token_endpoint_auth_methods_supported: ["client_secret_post"] }))).toBe("client_secret_post")
    expect(ClientRegistration.configuredMethod(true, as({ token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"] }))).toBe("client_secret_basic")
    expect(ClientRegistration.configuredMethod(false, as())).toBe("none")
  })

  it("a registration answer's method, RFC 7591's default, and one we cannot do", () => {
    expect(ClientRegistration.answeredMethod(undefined, false)).toBe("none")
    expect(ClientRegistration.answeredMethod(undefined, true)).toBe("client_secret_basic")
    expect(ClientRegistration.answeredMethod("private_key_jwt", false)).toBeUndefined()
    expect(ClientRegistration.registrationRequest).toMatchObject({ application_type: "native", token_endpoint_auth_method: "none" })
  })
})

describe("McpLogin", () => {
  it("scopes: explicit, else the challenge's, else the metadata's, else none; step-up asks for the union", () => {
    const meta = { resource: "https://m", scopes_supported: ["a"] }
    expect(McpLogin.scopesFor(["x"], { scopes: ["b"] }, meta)).toEqual(["x"])
    expect(McpLogin.scopesFor(undefined, { scopes: ["b"] }, meta)).toEqual(["b"])
    expect(McpLogin.scopesFor([], {}, meta)).toEqual(["a"])
    expect(McpLogin.scopesFor(undefined, undefined, { resource: "https://m" })).toEqual([])
    expect(McpLogin.unionScopes(["a", "b"], ["b", "c"])).toEqual(["a", "b", "c"])
  })

  it("the default name is the URL's host in provider-id characters", () => {
    expect(McpServers.defaultName("https://MCP.Example.com/mcp")).toBe("mcp-example-com")
    expect(McpServers.defaultName("http://127.0.0.1:5555/mcp")).toBe("127-0-0-1-5555")
  })
})
