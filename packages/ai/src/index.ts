/**
 * @agent-auth/ai — agent-auth for Effect agent runtimes built on `@effect/ai`.
 *
 * The model call gets its credential from agent-auth on every request: an API key or an
 * OAuth login, refreshed when due, refreshed once more when the model API answers 401.
 *
 * ```ts
 * const Model = OpenAiLanguageModel.layer({ model: "gpt-5" }).pipe(
 *   Layer.provide(AuthOpenAiClient.layer()),   // OpenAiClient with the resolved credential
 *   Layer.provide(NodeAuth.layer())            // agent-auth's services (@agent-auth/node)
 * )
 * ```
 * The whole example: `examples/runtime.ts`. Plain `HttpClient` middleware for other
 * providers and SDKs: `AuthHttpClient` in `@agent-auth/core`.
 */

/** `OpenAiClient` (`@effect/ai-openai`) whose requests carry the resolved credential: API key or ChatGPT login. */
export * as AuthOpenAiClient from "./AuthOpenAiClient.js"
