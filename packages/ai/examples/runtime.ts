/**
 * An agent runtime's model call, signed in with agent-auth. The same code runs with
 * `OPENAI_API_KEY` set (api.openai.com) or after `agent-auth login openai` (a ChatGPT
 * login: chatgpt.com's Codex backend), the token refreshed whenever it is due.
 *
 *   agent-auth login openai          # or: export OPENAI_API_KEY=sk-...
 *   npx tsx packages/ai/examples/runtime.ts
 */
import { AuthOpenAiClient } from "@agent-auth/ai"
import { AuthHttpClient } from "@agent-auth/core"
import { NodeAuth } from "@agent-auth/node"
import { LanguageModel } from "@effect/ai"
import { OpenAiLanguageModel } from "@effect/ai-openai"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer } from "effect"
import { pathToFileURL } from "node:url"

/** The agent's work: it asks for a LanguageModel and knows nothing about credentials. */
export const program = Effect.gen(function*() {
  const response = yield* LanguageModel.generateText({
    prompt: [
      { role: "system", content: "You are terse." },
      { role: "user", content: [{ type: "text", text: "Say hello in five words." }] }
    ]
  })
  yield* Console.log(response.text)
  return response.text
})

/** The model over an OpenAiClient whose every request carries the resolved credential. */
export const ModelLive: Layer.Layer<LanguageModel.LanguageModel, never, AuthOpenAiClient.Requirements> =
  OpenAiLanguageModel.layer({ model: "gpt-5" }).pipe(Layer.provide(AuthOpenAiClient.layer()))

/** agent-auth's Node services: environment, config.json, ~/.agent-auth, HTTP through fetch. */
export const MainLive = ModelLive.pipe(Layer.provide(NodeAuth.layer()))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // A missing or expired login fails with NotLoggedIn / ReauthRequired, saying what to run.
  program.pipe(AuthHttpClient.unwrapAuthError, Effect.provide(MainLive), NodeRuntime.runMain)
}
