/** `agent-auth providers`: built-in and configured providers and how to log in to each. */
import { Command } from "@effect/cli"
import { ProviderRegistry } from "@agent-auth/core"
import { Effect } from "effect"
import { json, verbose } from "../internal/args.js"
import { bold, event, say } from "../internal/output.js"

export const methodsOf = (p: { readonly canLogin: boolean; readonly takesApiKey: boolean; readonly device: string; readonly kind: string }) => [
  ...(p.canLogin ? ["browser"] : []),
  ...(p.canLogin && p.device !== "none" ? ["device"] : []),
  ...(p.takesApiKey ? ["api_key"] : [])
]

export const providers = Command.make("providers", { json, verbose }, (args) =>
  Effect.gen(function*() {
    const registry = yield* ProviderRegistry.ProviderRegistry
    for (const p of registry.list) {
      const methods = methodsOf(p)
      const keyVars = p.apiKeyEnv.length > 0 ? ` (API key: ${p.apiKeyEnv.join(" or ")})` : ""
      yield* say(`${bold(p.id.padEnd(12))} ${p.displayName} — ${methods.join(", ")}${keyVars}`)
    }
    if (args.json) {
      yield* event({
        providers: registry.list.map((p) => ({
          id: p.id,
          name: p.displayName,
          kind: p.kind,
          methods: methodsOf(p),
          issuer: p.issuer ?? null,
          api_key_env: p.apiKeyEnv,
          mode: p.mode
        }))
      })
    }
  })).pipe(Command.withDescription("list the providers and their login methods"))
