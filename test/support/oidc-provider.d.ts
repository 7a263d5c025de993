/**
 * The little of oidc-provider 9 the test harness uses (the package ships no types, and
 * @types/oidc-provider is not installed). Shapes follow its docs/README.md.
 */
declare module "oidc-provider" {
  import type { EventEmitter } from "node:events"
  import type { IncomingMessage, ServerResponse } from "node:http"

  export interface OidcContext {
    readonly oidc?: {
      readonly params?: Readonly<Record<string, unknown>>
    }
  }

  export interface ProviderClient {
    readonly clientId: string
  }

  export default class Provider extends EventEmitter {
    constructor(issuer: string, configuration: Record<string, unknown>)
    readonly issuer: string
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    /** Koa middleware around every request (the provider is a Koa application). */
    use(middleware: (ctx: OidcContext, next: () => Promise<void>) => Promise<void>): void
  }
}
