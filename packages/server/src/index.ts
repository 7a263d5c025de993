/**
 * @agent-auth/server — hosted sign-in for a service with many users on several replicas:
 * HTTP routes, pending logins any replica can complete, and each user's token store.
 */

/** Login, callback, logout and status routes for an `@effect/platform` HTTP server. */
export * as HostedLogin from "./HostedLogin.js"
/** Started logins, kept until their callback (memory, or SQL shared by every replica). */
export * as PendingLogins from "./PendingLogins.js"
/** The `TokenStore` of each principal (end user). */
export * as PrincipalStores from "./PrincipalStores.js"
