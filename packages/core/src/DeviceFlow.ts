/**
 * Device login: RFC 8628's device authorization grant for OIDC issuers that advertise it,
 * and OpenAI's device-auth variant (user code, polling, then a code exchange).
 */
import { Context, type Effect } from "effect"
import type { OAuthCredential } from "./Domain.js"
import type { AuthError } from "./Errors.js"
import type { LoginOptions } from "./PkceFlow.js"

export interface DeviceFlowShape {
  /** Shows the code through `onEvent` (`DeviceCode`), polls at the server's interval, stores the login. */
  readonly login: (provider: string, options?: Pick<LoginOptions, "account" | "onEvent">) => Effect.Effect<OAuthCredential, AuthError>
}

export class DeviceFlow extends Context.Tag("@agent-auth/core/DeviceFlow")<DeviceFlow, DeviceFlowShape>() {}
