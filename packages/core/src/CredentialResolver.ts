/**
 * What every model call asks: `resolve(provider)` gives a ready `Credential` from, per the
 * provider's `mode`, its environment variable, config.json's `apiKeys`, a stored key, or
 * the OAuth login (refreshed through `Refresher` when due).
 */
import { Context, type Effect } from "effect"
import type { Credential } from "./Domain.js"
import type { AuthError } from "./Errors.js"

export interface ResolveOptions {
  readonly account?: string | undefined
  /** Refresh the OAuth token even if it looks valid (the model API answered 401). */
  readonly forceRefresh?: boolean | undefined
}

export interface CredentialResolverShape {
  readonly resolve: (provider: string, options?: ResolveOptions) => Effect.Effect<Credential, AuthError>
}

export class CredentialResolver extends Context.Tag("@agent-auth/core/CredentialResolver")<CredentialResolver, CredentialResolverShape>() {}
