/**
 * The core services over the in-memory fake authorization server: no socket, and time
 * from the test's Clock, so flows run under TestClock.
 */
import { AuthConfig, DeviceFlow, JwtVerifier, PkceFlow, ProviderRegistry, Refresher, Revoker, CredentialResolver, TokenStore } from "@agent-auth/core"
import type { AuthConfig as AuthConfigNs } from "@agent-auth/core"
import { FakeAuthServer, TestSecureRandom } from "@agent-auth/testing"
import { Layer } from "effect"

export const ISSUER = "http://127.0.0.1:9"

export interface Options {
  readonly fake?: FakeAuthServer.FakeAuthServerOptions
  /** config.json for the run; defaults to an `acme` OIDC provider at the fake issuer. */
  readonly file?: AuthConfigNs.ConfigFile
}

export const acmeFile = (extra: Record<string, unknown> = {}): AuthConfigNs.ConfigFile => ({
  providers: { acme: { kind: "oidc", issuer: ISSUER, clientId: FakeAuthServer.defaultClientId, ...extra } }
})

export const servicesLayer = (options: Options = {}) => {
  const fake = FakeAuthServer.layerInMemory({ issuer: ISSUER, ...options.fake })
  const base = Layer.mergeAll(
    AuthConfig.layerWith({ home: "/test-home", file: options.file ?? acmeFile() }),
    TokenStore.layerMemory,
    TestSecureRandom.layer(7)
  ).pipe(Layer.provideMerge(fake))
  const stage1 = Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
  const stage2 = Refresher.layer.pipe(Layer.provideMerge(stage1))
  return Layer.mergeAll(PkceFlow.layer, DeviceFlow.layer, CredentialResolver.layer, Revoker.layer).pipe(
    Layer.provideMerge(stage2)
  )
}
