/**
 * @agent-auth/mcp — sign in to MCP servers.
 */
export * as ProtectedResource from "./ProtectedResource.js"
export * as AuthorizationServer from "./AuthorizationServer.js"
export * as ClientRegistration from "./ClientRegistration.js"
export * as McpServers from "./McpServers.js"
export * as McpLogin from "./McpLogin.js"
export * as McpAuth from "./McpAuth.js"
export * as NodeMcpAuth from "./NodeMcpAuth.js"
