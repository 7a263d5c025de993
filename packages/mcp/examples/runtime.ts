/**
 * An agent runtime calling tools on an MCP server it signed in to with agent-auth. The
 * token is refreshed when due, once across processes; a 401 refreshes once more.
 *
 *   agent-auth mcp login https://mcp.example.com/mcp
 *   node packages/mcp/examples/run.mjs https://mcp.example.com/mcp
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpAuth, NodeMcpAuth } from "@agent-auth/mcp"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect } from "effect"
import { pathToFileURL } from "node:url"

/** Connects with a fetch that carries the login's token, lists the tools, calls `echo`. */
export const program = (url: string) =>
  Effect.gen(function*() {
    const fetch = yield* Effect.flatMap(McpAuth.McpAuth, (auth) => auth.fetch(url))
    const client = new Client({ name: "example-agent", version: "1.0.0" })
    yield* Effect.acquireRelease(
      Effect.promise(() => client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch }))),
      () => Effect.promise(() => client.close())
    )
    const { tools } = yield* Effect.promise(() => client.listTools())
    yield* Console.log(`tools: ${tools.map((t) => t.name).join(", ")}`)
    const answer = yield* Effect.promise(() => client.callTool({ name: "echo", arguments: { text: "hello" } }))
    yield* Console.log(JSON.stringify(answer.content))
  }).pipe(Effect.scoped)

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Not signed in: fails with NotLoggedIn, naming `agent-auth mcp login <url>`.
  program(process.argv[2] ?? "").pipe(Effect.provide(NodeMcpAuth.layer()), NodeRuntime.runMain)
}
