/**
 * The services of an MCP sign-in in one process, over real HTTP: settings, a store, the MCP
 * server store (memory), the registry with its MCP `ProviderSource`, the core flows, the
 * Node loopback callback server, and a headless browser that signs in at the issuer's pages
 * and follows the redirect to the callback.
 */
import { FetchHttpClient } from "@effect/platform"
import { AuthConfig, BrowserLauncher, JwtVerifier, PkceFlow, ProviderRegistry, Refresher, Revoker, SecureRandom, TokenStore } from "@agent-auth/core"
import { McpAuth, McpServers } from "@agent-auth/mcp"
import { NodeCallbackServer } from "@agent-auth/node"
import { Effect, Layer } from "effect"
import { Browser } from "./browser.js"

/** Every URL a headless sign-in visited, newest last (the authorization URL first). */
export const visited: Array<string> = []

/**
 * Why a headless sign-in's navigation failed, newest last. Not thrown: a login may end
 * before its browser does (a refusal, a timeout, a closed callback), and the test judges
 * the login; these are kept for a test (or a person) to see when a login never completes.
 */
export const browserFailures: Array<unknown> = []

/** Opens the authorization URL in a headless browser that signs in as `alice` and follows the redirect to our callback. */
export const headlessBrowser = Layer.succeed(BrowserLauncher.BrowserLauncher, {
  open: (url) =>
    Effect.sync(() => {
      visited.push(url)
      void new Browser().navigate(url, { fields: { login: "alice", password: "any" } }).catch((e: unknown) => void browserFailures.push(e))
      return { _tag: "Opened" as const }
    })
})

export const mcpLayer = (
  options: { readonly file?: AuthConfig.ConfigFile; readonly store?: Layer.Layer<TokenStore.TokenStore>; readonly servers?: McpServers.McpFile } = {}
) => {
  const base = Layer.mergeAll(
    AuthConfig.layerWith({ home: "/test-home", file: options.file ?? {} }),
    options.store ?? TokenStore.layerMemory,
    SecureRandom.layer,
    FetchHttpClient.layer
  )
  const servers = McpServers.layerMemory(options.servers).pipe(Layer.provideMerge(base))
  const stage1 = Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(servers))
  const stage2 = Refresher.layer.pipe(Layer.provideMerge(stage1))
  return Layer.mergeAll(PkceFlow.layer, Revoker.layer, McpAuth.layerService, NodeCallbackServer.layer, headlessBrowser).pipe(
    Layer.provideMerge(stage2)
  )
}
