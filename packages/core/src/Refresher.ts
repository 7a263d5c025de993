/**
 * Keeps OAuth logins fresh. `fresh` returns a login whose access token is valid for at
 * least `minValidity` (default: AuthConfig.refreshSkew, 5 minutes), refreshing when not.
 *
 * One refresh per key at a time in the process; across processes the refresh runs inside
 * `TokenStore.modify`, re-reads, and skips when another process already refreshed.
 * Transient failures retry on a bounded schedule and keep the old credential; refusals
 * (`invalid_grant`, `refresh_token_reused|expired|invalidated`, 401) become `ReauthRequired`.
 * Never deletes a credential.
 */
import { Context, type Duration, type Effect } from "effect"
import type { CredentialKey, OAuthCredential } from "./Domain.js"
import type { AuthError } from "./Errors.js"

export interface FreshOptions {
  readonly minValidity?: Duration.DurationInput | undefined
  /** Refresh even if the token looks valid (after a 401 from the model API). */
  readonly force?: boolean | undefined
}

export interface RefresherShape {
  readonly fresh: (key: CredentialKey, options?: FreshOptions) => Effect.Effect<OAuthCredential, AuthError>
}

export class Refresher extends Context.Tag("@agent-auth/core/Refresher")<Refresher, RefresherShape>() {}
