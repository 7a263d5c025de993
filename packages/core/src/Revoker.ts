/**
 * Logout: RFC 7009 revocation where the provider has an endpoint (best effort, bounded in
 * time, result reported), then local deletion, which happens even when revocation fails.
 */
import { Context, type Effect } from "effect"
import type { CredentialKey } from "./Domain.js"
import type { AuthError } from "./Errors.js"

export type RevocationResult =
  | { readonly _tag: "Revoked" }
  | { readonly _tag: "NotSupported" }
  | { readonly _tag: "NothingToRevoke" }
  | { readonly _tag: "Failed"; readonly reason: string }

export interface LogoutResult {
  readonly revocation: RevocationResult
  readonly removed: boolean
}

export interface RevokerShape {
  readonly logout: (key: CredentialKey) => Effect.Effect<LogoutResult, AuthError>
}

export class Revoker extends Context.Tag("@agent-auth/core/Revoker")<Revoker, RevokerShape>() {}
