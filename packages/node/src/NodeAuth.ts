/**
 * Everything a Node program needs, in one layer: settings from the environment and
 * config.json, the store chosen by `AGENT_AUTH_STORE`, HTTP through `fetch`, and every
 * core service, plus the loopback callback server and the browser launcher.
 */
import { FetchHttpClient, type FileSystem, type HttpClient } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import {
  AuthConfig,
  type AuthError,
  type BrowserLauncher,
  type CallbackServer,
  ConfigInvalid,
  CredentialResolver,
  DeviceFlow,
  JwtVerifier,
  PkceFlow,
  ProviderRegistry,
  Refresher,
  Revoker,
  SecureRandom,
  TokenStore
} from "@agent-auth/core"
import type { Provider } from "@agent-auth/core"
import { Effect, Layer } from "effect"
import * as NodeBrowserLauncher from "./NodeBrowserLauncher.js"
import * as NodeCallbackServer from "./NodeCallbackServer.js"
import * as NodeCodexStore from "./NodeCodexStore.js"
import * as NodeTokenStore from "./NodeTokenStore.js"

export interface Options {
  /** Providers besides the built-ins (config.json can override them too). */
  readonly providers?: ReadonlyArray<Provider.ProviderConfig> | undefined
}

/** The store named by AuthConfig.store. */
export const tokenStore = Layer.unwrapEffect(
  Effect.map(AuthConfig.AuthConfig, (config) => {
    switch (config.store) {
      case "file":
      case "auto":
        return NodeTokenStore.layerFile
      case "memory":
        return TokenStore.layerMemory
      case "codex":
        return NodeCodexStore.layerCodex
      default:
        return Layer.fail(
          new ConfigInvalid({
            source: "AGENT_AUTH_STORE",
            field: "store",
            reason: `the "${config.store}" store is not available in this version; use "file"`
          })
        )
    }
  })
)

/** The core services over a given base (settings, HTTP, store). */
export const services = (options: Options = {}) => {
  const registry = ProviderRegistry.layerWith(options.providers ?? [])
  const stage1 = Layer.mergeAll(registry, JwtVerifier.layer, SecureRandom.layer)
  const stage2 = Refresher.layer.pipe(Layer.provideMerge(stage1))
  return Layer.mergeAll(CredentialResolver.layer, Revoker.layer, PkceFlow.layer, DeviceFlow.layer).pipe(
    Layer.provideMerge(stage2)
  )
}

/** Every service `layer` provides. */
export type Services =
  | AuthConfig.AuthConfig
  | HttpClient.HttpClient
  | FileSystem.FileSystem
  | TokenStore.TokenStore
  | ProviderRegistry.ProviderRegistry
  | JwtVerifier.JwtVerifier
  | SecureRandom.SecureRandom
  | Refresher.Refresher
  | CredentialResolver.CredentialResolver
  | Revoker.Revoker
  | PkceFlow.PkceFlow
  | DeviceFlow.DeviceFlow
  | CallbackServer.CallbackServer
  | BrowserLauncher.BrowserLauncher

export const layer = (options: Options = {}): Layer.Layer<Services, AuthError> => {
  const base = Layer.mergeAll(AuthConfig.layer, FetchHttpClient.layer).pipe(Layer.provideMerge(NodeFileSystem.layer))
  const withStore = tokenStore.pipe(Layer.provideMerge(base))
  return Layer.mergeAll(
    services(options).pipe(Layer.provideMerge(withStore)),
    NodeCallbackServer.layer,
    NodeBrowserLauncher.layer
  )
}
