/**
 * `@effect/ai-openai`'s `OpenAiClient`, signed in with agent-auth: every request carries the
 * credential `CredentialResolver` gives at that moment, so `LanguageModel.generateText` runs
 * unchanged with an API key (`OPENAI_API_KEY`, config.json, `login --with-api-key`) or with a
 * ChatGPT login (`agent-auth login openai`).
 *
 * How: `OpenAiClient.layer`'s `transformClient` is `AuthHttpClient.withCredential` — per
 * request the credential's base URL is joined to the client's relative paths (`/responses`
 * → `https://api.openai.com/v1/responses` with a key, `https://chatgpt.com/backend-api/codex/responses`
 * with a ChatGPT login), its headers are set (`Authorization`, and for a login
 * `ChatGPT-Account-Id` and `originator`), and a 401 refreshes once and retries. `apiUrl` is
 * left empty and no `apiKey` is given: the credential decides both, per request.
 *
 * For a ChatGPT login the requests are also adapted to the Codex backend (see
 * `internal/codexBackend.ts`): `store: false`, system messages as `instructions`, and a
 * streamed answer folded back for `generateText`. `codexBackend: false` turns that off.
 *
 * A failure to authenticate arrives as an `AiError` (`HttpRequestError`) whose message says
 * what to do; `AuthHttpClient.authError(error)` gives the typed `NotLoggedIn` /
 * `ReauthRequired` behind it.
 */
import { AuthHttpClient, type CredentialResolver } from "@agent-auth/core"
import { OpenAiClient } from "@effect/ai-openai"
import type { HttpClient } from "@effect/platform"
import { Effect, Layer, type Scope } from "effect"
import * as CodexBackend from "./internal/codexBackend.js"

/** What the layer needs: the plain `HttpClient` and agent-auth's `CredentialResolver` (both in `NodeAuth.layer()`). */
export type Requirements = HttpClient.HttpClient | CredentialResolver.CredentialResolver

export interface Options {
  /** The agent-auth provider whose credential is used (default `"openai"`). */
  readonly provider?: string | undefined
  /** Use this stored account only (environment and config.json keys belong to no account). */
  readonly account?: string | undefined
  /** Adapt requests for the ChatGPT Codex backend when they go there (default true). */
  readonly codexBackend?: boolean | undefined
}

/** The `transformClient` for `OpenAiClient`: credential per request, Codex adaptation below it. */
export const transformClient = (
  options: Options = {}
): Effect.Effect<(client: HttpClient.HttpClient) => HttpClient.HttpClient, never, CredentialResolver.CredentialResolver> =>
  Effect.map(
    AuthHttpClient.withCredential(options.provider ?? "openai", { account: options.account }),
    (withCredential) =>
      options.codexBackend === false
        ? withCredential
        // The adapter sits below the credential, so it sees the resolved absolute URL.
        : (client) => withCredential(CodexBackend.adapt(client))
  )

/** The `OpenAiClient` service over the ambient `HttpClient` (the plain one: tokens are fetched through it too). */
export const make = (
  options: Options = {}
): Effect.Effect<OpenAiClient.Service, never, HttpClient.HttpClient | CredentialResolver.CredentialResolver | Scope.Scope> =>
  Effect.flatMap(transformClient(options), (transform) => OpenAiClient.make({ apiUrl: "", transformClient: transform }))

/** `OpenAiClient` whose every request carries the resolved credential. */
export const layer = (
  options: Options = {}
): Layer.Layer<OpenAiClient.OpenAiClient, never, Requirements> =>
  Layer.scoped(OpenAiClient.OpenAiClient, make(options))
