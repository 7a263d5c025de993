/**
 * `agent-auth providers`: built-in and configured providers, how to log in to each, and
 * which can give a credential right now (`CredentialResolver.available`, offline).
 */
import { CredentialResolver, ProviderRegistry } from "@agent-auth/core"
import { Effect } from "effect"
import { json, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { data, event, MARK, onStdout } from "../internal/output.js"

const { bold, green } = onStdout

export const methodsOf = (p: { readonly canLogin: boolean; readonly takesApiKey: boolean; readonly device: string; readonly kind: string }) => [
  ...(p.canLogin ? ["browser"] : []),
  ...(p.canLogin && p.device !== "none" ? ["device"] : []),
  ...(p.takesApiKey ? ["api_key"] : []),
  ...(p.kind === "google_adc" ? ["gcloud_adc"] : [])
]

/** How a usable provider's credential comes, in a few words. */
export const sourceText = (s: CredentialResolver.Source): string => {
  switch (s._tag) {
    case "Env":
      return `API key from ${s.origin.variable}`
    case "Config":
      return "API key in config.json"
    case "StoredKey":
      return "stored API key"
    case "OAuth":
      return `signed in as ${s.credential.claims.email ?? s.credential.account}`
    case "Adc":
      return `Application Default Credentials (${s.origin.account ?? s.origin.path})`
  }
}

export const providers = C.make({
  name: "providers",
  summary: "list the providers, how to sign in to each, and which are usable now",
  description:
    "Lists the built-in providers and those configured in config.json, with their login methods (browser, device code, API key), the environment variables that supply a key, and which can give a credential right now. Reads local state only.",
  flags: { json, verbose },
  examples: [
    { command: "agent-auth providers", does: "the list, one provider a line" },
    { command: "agent-auth providers --json", does: "the same as one JSON object" }
  ],
  run: (args) => Effect.gen(function*() {
    const registry = yield* ProviderRegistry.ProviderRegistry
    const resolver = yield* CredentialResolver.CredentialResolver
    const usable = new Map((yield* resolver.available()).map((a) => [a.provider.id, a.source]))
    for (const p of registry.list) {
      const methods = methodsOf(p)
      const keyVars = p.apiKeyEnv.length > 0 ? ` (API key: ${p.apiKeyEnv.join(" or ")})` : ""
      const source = usable.get(p.id)
      const ready = source === undefined ? "" : `  ${green(MARK.ok)} usable: ${sourceText(source)}`
      // The list is this command's data: on stdout (with --json, only the JSON).
      if (!args.json) yield* data(`${bold(p.id.padEnd(12))} ${p.displayName} — ${methods.join(", ")}${keyVars}${ready}`)
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
          mode: p.mode,
          usable: usable.has(p.id),
          source: usable.get(p.id)?._tag ?? null
        }))
      })
    }
  })
})
