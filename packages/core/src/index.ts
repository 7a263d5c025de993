/**
 * @agent-auth/core — the portable OAuth client: domain, errors, services and their
 * in-memory layers. No Node imports; Node layers live in @agent-auth/node.
 */

/** Tokens, stored credentials, and the `Credential` a model call needs. */
export * as Domain from "./Domain.js"
/** Every failure, as Schema.TaggedError with an actionable message and an exit code. */
export * from "./Errors.js"
/** Provider configuration and the built-ins (openai, anthropic). */
export * as Provider from "./Provider.js"
/** Settings: home folder, store kind, time limits, config.json. */
export * as AuthConfig from "./AuthConfig.js"
/** CSPRNG bytes for state, verifier, nonce. */
export * as SecureRandom from "./SecureRandom.js"
/** Where logins and keys live: get / set / remove / list / modify. */
export * as TokenStore from "./TokenStore.js"
/** Built-in and configured providers; discovery. */
export * as ProviderRegistry from "./ProviderRegistry.js"
/** ID token verification against the issuer's JWKS. */
export * as JwtVerifier from "./JwtVerifier.js"
/** The loopback receiver of a browser login (Node layer in @agent-auth/node). */
export * as CallbackServer from "./CallbackServer.js"
/** Opening the browser (Node layer in @agent-auth/node). */
export * as BrowserLauncher from "./BrowserLauncher.js"
/** Browser login: authorization code + PKCE. */
export * as PkceFlow from "./PkceFlow.js"
/** Device login: RFC 8628 and OpenAI's variant. */
export * as DeviceFlow from "./DeviceFlow.js"
/** Keeping logins fresh, once per key across fibers and processes. */
export * as Refresher from "./Refresher.js"
/** Logout: revoke, then delete. */
export * as Revoker from "./Revoker.js"
/** The credential for a model call. */
export * as CredentialResolver from "./CredentialResolver.js"
/** HttpClient middleware: every request carries the resolved credential; one refresh-and-retry on 401. */
export * as AuthHttpClient from "./AuthHttpClient.js"
/** No redirect followed, answers read up to a bound: the HTTP rules, for packages built on core. */
export * as HttpRules from "./HttpRules.js"
