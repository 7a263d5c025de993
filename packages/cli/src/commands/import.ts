/**
 * `agent-auth import codex [--from PATH]`: copy the Codex CLI's login (ChatGPT tokens or an
 * API key) from `$CODEX_HOME/auth.json` (default `~/.codex/auth.json`) into the configured
 * store. The Codex file is only read: a malformed one is reported and left where it is.
 *
 * A copy of a ChatGPT login is a second holder of one single-use refresh token: whichever
 * program refreshes first makes the other's copy fail. So the copy warns, and points at
 * `AGENT_AUTH_STORE=codex`, which shares the one file instead.
 */
import { AuthConfig, ConfigInvalid, Domain, TokenStore } from "@agent-auth/core"
import { NodeCodexStore } from "@agent-auth/node"
import { Effect, Either, Option } from "effect"
import * as NodePath from "node:path"
import { json, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { bold, event, say, yellow } from "../internal/output.js"

export const importCommand = C.make({
  name: "import",
  summary: "copy a Codex CLI login (ChatGPT tokens or API key) into agent-auth's store",
  description:
    "Copies the login of another tool into agent-auth's store; today the Codex CLI's auth.json. The source file is only read. A copied ChatGPT login shares one single-use refresh token with Codex: AGENT_AUTH_STORE=codex shares the file instead.",
  args: {
    source: C.arg("source", {
      description: "where from: codex",
      completion: C.complete.choice(["codex"]),
      parse: (text) => (text === "codex" ? Either.right("codex" as const) : Either.left("the only source is codex"))
    })
  },
  flags: {
    from: C.value("from", {
      description: "the Codex auth.json to read (default $CODEX_HOME/auth.json, else ~/.codex/auth.json)",
      placeholder: "PATH",
      completion: C.complete.file,
      parse: (text) => (text.length > 0 ? Either.right(text) : Either.left("a path is not empty"))
    }),
    json,
    verbose
  },
  examples: [
    { command: "agent-auth import codex", does: "copy ~/.codex/auth.json" },
    { command: "agent-auth import codex --from /mnt/old/auth.json", does: "copy another Codex file" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const config = yield* AuthConfig.AuthConfig
      const store = yield* TokenStore.TokenStore
      const shared = yield* NodeCodexStore.defaultPath
      const path = args.from !== undefined ? NodePath.resolve(args.from) : shared

      if (config.store === "codex" && path === shared) {
        yield* say(`AGENT_AUTH_STORE=codex already uses ${path}: agent-auth and Codex share that login, so there is nothing to copy.`)
        if (args.json) yield* event({ event: "import_skipped", provider: NodeCodexStore.OPENAI, from: path, reason: "shared" })
        return
      }

      const found = yield* NodeCodexStore.readLogin(path)
      if (found._tag === "Missing") {
        return yield* new ConfigInvalid({
          source: path,
          field: "(file)",
          reason: "there is no Codex login here; run `codex login` first, or name the file with --from"
        })
      }
      if (Option.isNone(found.credential)) {
        return yield* new ConfigInvalid({
          source: path,
          field: "auth_mode",
          reason: "the file holds no login agent-auth can use (neither an API key nor ChatGPT tokens)"
        })
      }
      const credential = found.credential.value
      yield* store.set(credential)

      const kind = credential._tag === "OAuthCredential" ? "chatgpt" : "api_key"
      if (args.json) {
        yield* event({ event: "imported", provider: credential.provider, account: credential.account, kind, from: path })
      }
      const what = credential._tag === "OAuthCredential"
        ? `the ChatGPT login of ${bold(credential.claims.email ?? credential.account)} (account ${credential.account})`
        : `the API key ${Domain.mask(credential.key)}`
      yield* say(`Imported ${what} from ${path} into ${store.location}.`)
      if (credential._tag === "OAuthCredential") {
        yield* say(yellow(
          "Warning: Codex and agent-auth now hold two copies of one login, and its refresh token works only once: " +
            "whichever program refreshes first makes the other's copy fail (refresh_token_reused), and that one must log in again."
        ))
        yield* say(
          `To share the one login instead of copying it, set AGENT_AUTH_STORE=codex: agent-auth then reads and writes ${shared} in place, as Codex does.`
        )
      }
    })
})
