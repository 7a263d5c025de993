/**
 * @agent-auth/testing — for our tests and for agent runtimes that embed agent-auth.
 */

/** An in-process authorization server (OIDC or OpenAI-shaped) on 127.0.0.1 or in memory, with fault injection and counters. */
export * as FakeAuthServer from "./FakeAuthServer.js"
/** A deterministic SecureRandom, for tests only. */
export * as TestSecureRandom from "./TestSecureRandom.js"
// The shared TokenStore suite imports vitest, so it has its own entry point:
// `@agent-auth/testing/TokenStoreSuite`.
