/**
 * Everything a Node program needs, in one layer: settings from the environment and
 * config.json, the store chosen by `AGENT_AUTH_STORE`, HTTP through `fetch`, and every
 * core service, plus the loopback callback server and the browser launcher (`layer`).
 * Smaller layers for programs that need less: `layerServices` (no browser login's
 * loopback server or launcher) and `layerResolve` (only what `resolve` needs).
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
import { Context, Effect, Layer } from "effect"
import * as NodeBrowserLauncher from "./NodeBrowserLauncher.js"
import * as NodeCallbackServer from "./NodeCallbackServer.js"
import * as NodeCodexStore from "./NodeCodexStore.js"
import * as NodeKeyringStore from "./NodeKeyringStore.js"
import * as NodeTokenStore from "./NodeTokenStore.js"

/**
 * The SQL stores (`AGENT_AUTH_STORE=postgres|sqlite`) live in `@agent-auth/sql`, which this
 * package does not depend on (a program without them installs no database driver): a
 * program that offers them passes this, typically `SqlTokenStore.layerEnv`.
 */
export type SqlStoreLayer = (
  kind: "postgres" | "sqlite"
) => Layer.Layer<TokenStore.TokenStore, AuthError, AuthConfig.AuthConfig>

export interface Options {
  /** Providers besides the built-ins (config.json can override them too). */
  readonly providers?: ReadonlyArray<Provider.ProviderConfig> | undefined
  /** The SQL stores, when this program offers them (see `SqlStoreLayer`). */
  readonly sqlStore?: SqlStoreLayer | undefined
  /** Providers known only at run time (`@agent-auth/mcp`'s MCP servers), asked for ids the others lack. */
  readonly providerSource?: SourceLayer | undefined
}

/** A `ProviderSource` built over the settings and HTTP (what else it needs, it is given). */
export type SourceLayer = Layer.Layer<ProviderRegistry.ProviderSource, AuthError, AuthConfig.AuthConfig | HttpClient.HttpClient>

/** The registry, over the provider source when there is one. */
const registryLayer = (options: Options) => {
  const registry = ProviderRegistry.layerWith(options.providers ?? [])
  return options.providerSource === undefined ? registry : registry.pipe(Layer.provide(options.providerSource))
}

/** The store named by AuthConfig.store (the SQL ones through `options.sqlStore`). */
export const tokenStoreWith = (options: Options = {}) =>
  Layer.unwrapEffect(Effect.map(AuthConfig.AuthConfig, (config) => {
    switch (config.store) {
      case "postgres":
      case "sqlite":
        return options.sqlStore === undefined
          ? Layer.fail(
            new ConfigInvalid({
              source: "AGENT_AUTH_STORE",
              field: "store",
              reason: `the "${config.store}" store needs @agent-auth/sql, which this program does not include`
            })
          )
          : options.sqlStore(config.store)
      case "file":
        return NodeTokenStore.layerFile
      case "auto":
        return NodeKeyringStore.layerAuto
      case "keyring":
        return NodeKeyringStore.layerKeyring
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
  }))

/** The store named by AuthConfig.store, without the SQL ones. */
export const tokenStore: Layer.Layer<TokenStore.TokenStore, AuthError, FileSystem.FileSystem | AuthConfig.AuthConfig> =
  tokenStoreWith()

/** The core services over a given base (settings, HTTP, store). */
export const services = (options: Options = {}) => {
  const stage1 = Layer.mergeAll(registryLayer(options), JwtVerifier.layer, SecureRandom.layer)
  const stage2 = Refresher.layer.pipe(Layer.provideMerge(stage1))
  return Layer.mergeAll(CredentialResolver.layer, Revoker.layer, PkceFlow.layer, DeviceFlow.layer).pipe(
    Layer.provideMerge(stage2)
  )
}

/** Settings, the file system, HTTP through `fetch`, and the store `AuthConfig.store` names. */
const base = (options: Options) =>
  tokenStoreWith(options).pipe(
    Layer.provideMerge(Layer.mergeAll(AuthConfig.layer, FetchHttpClient.layer)),
    Layer.provideMerge(NodeFileSystem.layer)
  )

/** Every service `layerResolve` provides. */
export type ResolveServices =
  | AuthConfig.AuthConfig
  | HttpClient.HttpClient
  | FileSystem.FileSystem
  | TokenStore.TokenStore
  | ProviderRegistry.ProviderRegistry
  | Refresher.Refresher
  | CredentialResolver.CredentialResolver

/**
 * What `CredentialResolver.resolve` needs and no more: settings, the store, HTTP (used
 * only when a refresh is due), the registry, `Refresher` and `CredentialResolver`. For a
 * process that reads credentials, such as the CLI's `status` and `token`: it builds
 * (and, bundled, loads) none of the login, logout and ID-token services. Its services are
 * its own, as with `Layer.fresh`: another layer of the same program that uses one of the
 * same layers (say `NodeTokenStore.layerFile`) gets another instance of it.
 */
export const layerResolve = (options: Options = {}): Layer.Layer<ResolveServices, AuthError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      // One after the other in one scope, rather than as a graph of merged layers: the same
      // services, without the fibers and memo maps a graph builds them with, which cost a
      // short-lived process (the CLI) more of its start-up than anything they save.
      const add = <A, B, E, R extends A>(context: Context.Context<A>, layer: Layer.Layer<B, E, R>) =>
        Effect.map(Effect.provide(Layer.build(layer), context), (built) => Context.merge(context, built))
      const files = yield* Layer.build(NodeFileSystem.layer)
      const settings = yield* add(files, AuthConfig.layer)
      const http = yield* add(settings, FetchHttpClient.layer)
      const stored = yield* add(http, tokenStoreWith(options))
      const registry = yield* add(stored, registryLayer(options))
      const refresher = yield* add(registry, Refresher.layer)
      return yield* add(refresher, CredentialResolver.layer)
    })
  )

/** Every service `layerServices` provides: all of `layer` but the browser login's two. */
export type CoreServices =
  | ResolveServices
  | JwtVerifier.JwtVerifier
  | SecureRandom.SecureRandom
  | Revoker.Revoker
  | PkceFlow.PkceFlow
  | DeviceFlow.DeviceFlow

/**
 * Every core service over settings, the store and HTTP, without the loopback callback
 * server and the browser launcher: `PkceFlow.login` asks for those two itself, so a
 * program that logs in in a browser provides them around that call (as the CLI's `login`
 * does, loading their code only then).
 */
export const layerServices = (options: Options = {}): Layer.Layer<CoreServices, AuthError> =>
  services(options).pipe(Layer.provideMerge(base(options)))

/** Every service `layer` provides. */
export type Services = CoreServices | CallbackServer.CallbackServer | BrowserLauncher.BrowserLauncher

export const layer = (options: Options = {}): Layer.Layer<Services, AuthError> =>
  Layer.mergeAll(layerServices(options), NodeCallbackServer.layer, NodeBrowserLauncher.layer)
