/**
 * Everything a Node runtime needs to call MCP servers with agent-auth's logins: NodeAuth's
 * services (settings from the environment and config.json, the store `AGENT_AUTH_STORE`
 * names, HTTP through fetch) with the MCP servers of `$AGENT_AUTH_HOME/mcp.json` in the
 * registry, `McpServers`, and `McpAuth`.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type { AuthError } from "@agent-auth/core"
import { NodeAuth } from "@agent-auth/node"
import { Layer } from "effect"
import * as McpAuth from "./McpAuth.js"
import * as McpServers from "./McpServers.js"

const servers = McpServers.layerFile.pipe(Layer.provide(NodeFileSystem.layer))

export type Services = NodeAuth.CoreServices | McpServers.McpServers | McpAuth.McpAuth

export const layer = (options: NodeAuth.Options = {}): Layer.Layer<Services, AuthError> => {
  const core = NodeAuth.layerServices({ ...options, providerSource: servers })
  return Layer.mergeAll(McpAuth.layerService, servers).pipe(Layer.provideMerge(core))
}
