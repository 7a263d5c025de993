/**
 * @agent-auth/mcp — sign in to MCP servers and call their tools with the token: the client
 * side of the MCP authorization spec, one module per step, over core's flows and stores.
 */

/** A 401's challenge, RFC 9728 protected-resource metadata, and the `resource` to ask for. */
export * as ProtectedResource from "./ProtectedResource.js"
/** The authorization server, discovered in the MCP order, refused without S256. */
export * as AuthorizationServer from "./AuthorizationServer.js"
/** Which client: pre-registered, a metadata document, else RFC 7591 registration kept per issuer. */
export * as ClientRegistration from "./ClientRegistration.js"
/** mcp.json: the servers signed in to and the registrations by issuer; the registry's ProviderSource. */
export * as McpServers from "./McpServers.js"
/** Signing in to an MCP server: probe, discovery, client, browser login with `resource`. */
export * as McpLogin from "./McpLogin.js"
/** A `fetch` (and HttpClient middleware) carrying the login's token to its server only. */
export * as McpAuth from "./McpAuth.js"
/** Everything a Node runtime needs for MCP servers, in one layer. */
export * as NodeMcpAuth from "./NodeMcpAuth.js"
