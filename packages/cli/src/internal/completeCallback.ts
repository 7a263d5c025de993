/**
 * What the shell completion scripts ask this CLI for: the provider names configured in
 * config.json (built-in names are in the scripts), or the stored account names. It prints
 * nothing at all when anything fails (a broken config.json, an unreadable store): a shell
 * must never show an error because the person pressed Tab.
 */
import { ProviderRegistry, TokenStore } from "@agent-auth/core"
import { Effect } from "effect"

export const completeCallback = (kind: "providers" | "accounts", builtins: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const names = kind === "providers"
      ? (yield* ProviderRegistry.ProviderRegistry).list.map((p) => p.id).filter((id) => !builtins.includes(id))
      : [...new Set((yield* (yield* TokenStore.TokenStore).list()).map((c) => c.account))]
    // Only plain words: a name with spaces or control bytes would break the shell's word list.
    const lines = names.filter((n) => /^[^\s\p{C}]+$/u.test(n))
    if (lines.length > 0) process.stdout.write(lines.join("\n") + "\n")
  }).pipe(Effect.catchAllCause(() => Effect.void))
