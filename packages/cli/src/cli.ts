/**
 * The command tree of `agent-auth` (internal/command.ts): what main.ts runs, and what its
 * help and completion scripts are written from. A new command (or group of commands, such
 * as `mcp`) is added here, and nowhere else.
 */
import { Provider } from "@agent-auth/core"
import { Either } from "effect"
import { demo } from "./commands/demo.js"
import { importCommand } from "./commands/import.js"
import { login } from "./commands/login.js"
import { logout } from "./commands/logout.js"
import { mcp } from "./commands/mcp.js"
import { providers } from "./commands/providers.js"
import { refresh } from "./commands/refresh.js"
import { status } from "./commands/status.js"
import { token } from "./commands/token.js"
import { use } from "./commands/use.js"
import * as C from "./internal/command.js"
import { completeCallback } from "./internal/completeCallback.js"
import { demoProvider } from "./internal/demoProvider.js"
import { SHELLS } from "./internal/parse.js"

export const VERSION = "0.1.0"

/** Provider names every completion script holds without asking (config.json adds more). */
export const builtinProviderNames: ReadonlyArray<string> = [...Provider.builtins.map((p) => p.id), demoProvider.id]

/** `agent-auth __complete providers|accounts`: what the completion scripts call back for (hidden). */
const complete = C.make({
  name: "__complete",
  summary: "names for shell completion",
  description: "Prints the provider names configured in config.json, or the stored account names, one a line; nothing on any error.",
  args: {
    kind: C.arg("kind", {
      description: "providers or accounts",
      parse: (text) =>
        text === "providers" || text === "accounts" ? Either.right(text as "providers" | "accounts") : Either.left("providers or accounts")
    })
  },
  flags: {},
  examples: [],
  hidden: true,
  run: (args) => completeCallback(args.kind, builtinProviderNames)
})

export const root = C.group({
  name: "agent-auth",
  summary: "OAuth sign-in and credentials for AI agent runtimes",
  description:
    "Signs you in to LLM providers (OpenAI with your ChatGPT account, OIDC providers) or stores their API keys, keeps the tokens fresh, and hands scripts and agent runtimes a ready credential. `agent-auth demo` tries every command with no network and no account.",
  flags: {
    version: C.boolean("version", "print the version"),
    completions: C.value("completions", {
      description: `print a completion script for ${SHELLS.join(", ")}, e.g. eval "$(agent-auth --completions bash)"`,
      placeholder: "SHELL",
      completion: C.complete.choice(SHELLS),
      parse: (text) => Either.right(text)
    })
  },
  commands: [providers, login, status, token, refresh, logout, use, importCommand, mcp, demo, complete],
  examples: [
    { command: "agent-auth demo", does: "a tour of every command, with no network and no account" },
    { command: "agent-auth login openai", does: "sign in with your ChatGPT account" },
    { command: "agent-auth token openai", does: "a fresh access token on stdout, for scripts" }
  ]
})
