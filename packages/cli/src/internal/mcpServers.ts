/**
 * The MCP servers signed in to, as the registry's ProviderSource (mcp.json in
 * AGENT_AUTH_HOME): `token`, `status`, `refresh` and `logout` then take an MCP server's name
 * or URL. Both bundles use it; it loads @agent-auth/mcp's store and discovery rules, never
 * the MCP SDK.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { McpServers } from "@agent-auth/mcp"
import { Layer } from "effect"

export const mcpServers = McpServers.layerFile.pipe(Layer.provide(NodeFileSystem.layer))
