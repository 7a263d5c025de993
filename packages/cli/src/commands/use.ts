/**
 * `agent-auth use <provider> [<account>]`: choose the default account when a provider has
 * several stored (recorded in config.json `defaults`; `--account` on the other commands
 * still picks another for one call). Without an account: a menu on a terminal, else the list.
 */
import { ProviderRegistry, UsageError } from "@agent-auth/core"
import { Effect, Option } from "effect"
import { recordedDefault, setDefaultAccount, storedAccounts } from "../internal/accounts.js"
import { json, provider, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { select } from "../internal/menu.js"
import { bold, dim, event, say, stderrIsTty, stdinIsTty } from "../internal/output.js"

export const use = C.make({
  name: "use",
  summary: "choose the default account of a provider that has several",
  description:
    "Records which stored account the other commands use for a provider (in config.json `defaults`); `--account` still picks another for one command. Without an account: a menu on a terminal, else the list of accounts.",
  args: {
    provider,
    account: C.optionalArg(C.arg("account", { description: "a stored account name", completion: C.complete.account, parse: C.accountName }))
  },
  flags: { json, verbose },
  examples: [
    { command: "agent-auth use openai work", does: "make the account `work` OpenAI's default" },
    { command: "agent-auth use openai", does: "choose from a menu of the stored accounts" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const p = yield* registry.get(args.provider)
      const accounts = yield* storedAccounts(p)
      const current = yield* recordedDefault(p)
      if (accounts.length === 0) {
        return yield* new UsageError({
          source: "command line",
          reason: `nothing is stored for ${p.id}; \`agent-auth login ${p.id} --account NAME\` adds an account`
        })
      }
      let account: string
      if (args.account !== undefined) {
        account = args.account
      } else if (stdinIsTty() && stderrIsTty()) {
        const chosen = yield* select(
          `Default account for ${p.displayName}:`,
          accounts.map((a) => ({ label: a, note: a === current ? "(current default)" : undefined, value: a })),
          { bold, dim }
        )
        if (Option.isNone(chosen)) return yield* say("Nothing changed.")
        account = chosen.value
      } else {
        return yield* new UsageError({
          source: "command line",
          reason: `name the account: ${accounts.map((a) => (a === current ? `${a} (default)` : a)).join(", ")}`
        })
      }
      if (!accounts.includes(account)) {
        return yield* new UsageError({
          source: "command line",
          reason: `${p.id} has no stored account "${account}" (stored: ${accounts.join(", ")}); ` +
            `\`agent-auth login ${p.id} --account ${account}\` adds it`
        })
      }
      yield* setDefaultAccount(p.id, account)
      if (args.json) yield* event({ event: "default_account", provider: p.id, account })
      yield* say(`The default account for ${p.displayName} is now ${bold(account)}. ${dim("(config.json `defaults`)")}`)
    })
})
