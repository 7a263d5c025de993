/**
 * `agent-auth status [<provider>]`, in the manner of `gh auth status`: one block per
 * provider, every credential found and where it came from, which one is used, the
 * expiry (absolute and relative), secrets masked. Reads only local state: no network.
 */
import { Args, Command } from "@effect/cli"
import { AuthConfig, Domain, ExitCode, ProviderRegistry, TokenStore } from "@agent-auth/core"
import type { Provider } from "@agent-auth/core"
import { Clock, Config, DateTime, Effect, Option, Redacted } from "effect"
import { json, verbose } from "../internal/args.js"
import { exitWith } from "../internal/exit.js"
import { bold, dim, event, expiry, green, red, say, yellow } from "../internal/output.js"

type Found =
  | { readonly kind: "env"; readonly variable: string; readonly key: Redacted.Redacted<string> }
  | { readonly kind: "config"; readonly path: string; readonly key: Redacted.Redacted<string> }
  | { readonly kind: "stored_key"; readonly credential: Domain.ApiKeyCredential }
  | { readonly kind: "oauth"; readonly credential: Domain.OAuthCredential }

/** Every credential a provider has, in the order the resolver would consider them under its mode. */
const gather = (p: Provider.ProviderConfig) =>
  Effect.gen(function*() {
    const config = yield* AuthConfig.AuthConfig
    const store = yield* TokenStore.TokenStore
    const keys: Array<Found> = []
    for (const variable of p.apiKeyEnv) {
      const value = yield* Config.option(Config.redacted(variable)).pipe(Effect.orElseSucceed(() => Option.none()))
      if (Option.isSome(value) && Redacted.value(value.value).length > 0) keys.push({ kind: "env", variable, key: value.value })
    }
    const configured = config.file.apiKeys?.[p.id]
    if (configured !== undefined) keys.push({ kind: "config", path: config.configPath, key: configured })
    const oauth: Array<Found> = []
    for (const c of yield* store.list(p.id)) {
      if (c._tag === "ApiKeyCredential") keys.push({ kind: "stored_key", credential: c })
      else oauth.push({ kind: "oauth", credential: c })
    }
    switch (p.mode) {
      case "api_key_only":
        return keys
      case "oauth_only":
        return oauth
      case "prefer_oauth":
        return [...oauth, ...keys]
      default:
        return [...keys, ...oauth]
    }
  })

/** Usable without a new login: a key, or an OAuth login with a valid token or a refresh token. */
const usable = (f: Found, now: number): boolean => {
  if (f.kind !== "oauth") return true
  const t = f.credential.tokens
  return t.refreshToken !== undefined || t.expiresAt === undefined || DateTime.toEpochMillis(t.expiresAt) > now
}

export const status = Command.make(
  "status",
  { provider: Args.text({ name: "provider" }).pipe(Args.optional), json, verbose },
  (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const store = yield* TokenStore.TokenStore
      const now = yield* Clock.currentTimeMillis
      const providers = Option.isSome(args.provider) ? [yield* registry.get(args.provider.value)] : registry.list
      const blocks: Array<{ p: Provider.ProviderConfig; found: Array<Found> }> = []
      for (const p of providers) {
        const found = yield* gather(p)
        // Without a provider argument, show only the providers that have something.
        if (found.length > 0 || Option.isSome(args.provider)) blocks.push({ p, found })
      }
      let unusable = blocks.length === 0
      const out: Array<Record<string, unknown>> = []
      if (blocks.length === 0) yield* say("Not logged in to any provider. `agent-auth providers` lists them; `agent-auth login <provider>` signs in.")
      for (const { p, found } of blocks) {
        const active = found.find((f) => usable(f, now))
        if (active === undefined) unusable = true
        yield* say(bold(p.id))
        if (found.length === 0) {
          const ways = [
            ...(p.apiKeyEnv.length > 0 ? [`set ${p.apiKeyEnv.join(" or ")}`] : []),
            p.canLogin ? `run \`agent-auth login ${p.id}\`` : `run \`agent-auth login ${p.id} --with-api-key\``
          ]
          yield* say(`  ${red("X")} Not logged in: ${ways.join(", or ")}`)
        }
        const entries: Array<Record<string, unknown>> = []
        for (const f of found) {
          const mark = f === active ? green("✓") : usable(f, now) ? dim("-") : red("X")
          const note = f === active ? "" : usable(f, now) ? dim(" (not used: another credential comes first)") : ""
          switch (f.kind) {
            case "env":
              yield* say(`  ${mark} API key from the environment variable ${f.variable}${note}`)
              yield* say(`    - Key: ${Domain.mask(f.key)}`)
              entries.push({ source: "env", variable: f.variable, active: f === active, key: Domain.mask(f.key) })
              break
            case "config":
              yield* say(`  ${mark} API key from ${f.path} (apiKeys.${p.id})${note}`)
              yield* say(`    - Key: ${Domain.mask(f.key)}`)
              entries.push({ source: "config", path: f.path, active: f === active, key: Domain.mask(f.key) })
              break
            case "stored_key":
              yield* say(`  ${mark} API key stored in ${store.location} (account ${f.credential.account})${note}`)
              yield* say(`    - Key: ${Domain.mask(f.credential.key)}`)
              entries.push({ source: "stored_key", store: store.location, account: f.credential.account, active: f === active, key: Domain.mask(f.credential.key) })
              break
            case "oauth": {
              const c = f.credential
              const t = c.tokens
              const who = c.claims.email ?? c.account
              yield* say(`  ${mark} Logged in with OAuth as ${bold(who)} (account ${c.account}), stored in ${store.location}${note}`)
              if (c.claims.plan !== undefined) yield* say(`    - Plan: ${c.claims.plan}`)
              if (c.claims.organization !== undefined) yield* say(`    - Organization: ${c.claims.organization}`)
              if (c.claims.accountId !== undefined && c.claims.accountId !== c.account) yield* say(`    - Account id: ${c.claims.accountId}`)
              if (t.scopes.length > 0) yield* say(`    - Scopes: ${t.scopes.join(" ")}`)
              if (t.expiresAt !== undefined) {
                const past = DateTime.toEpochMillis(t.expiresAt) <= now
                const text = `${past ? "Expired" : "Expires"} ${yield* expiry(t.expiresAt)}`
                yield* say(`    - ${past ? (t.refreshToken === undefined ? red(text) : yellow(text)) : text}` +
                  (past && t.refreshToken !== undefined ? " — refreshed on next use" : ""))
              } else {
                yield* say(`    - Expiry: not given by the provider`)
              }
              yield* say(`    - Refresh token: ${t.refreshToken === undefined ? red("none (log in again when it expires)") : "yes"}`)
              yield* say(`    - Token: ${Domain.mask(t.accessToken)}`)
              entries.push({
                source: "oauth",
                store: store.location,
                account: c.account,
                active: f === active,
                email: c.claims.email ?? null,
                plan: c.claims.plan ?? null,
                organization: c.claims.organization ?? null,
                account_id: c.claims.accountId ?? null,
                scopes: t.scopes,
                expires_at: t.expiresAt === undefined ? null : DateTime.formatIso(t.expiresAt),
                expires_in_seconds: t.expiresAt === undefined ? null : Math.round((DateTime.toEpochMillis(t.expiresAt) - now) / 1000),
                refreshable: t.refreshToken !== undefined,
                token: Domain.mask(t.accessToken)
              })
              break
            }
          }
        }
        out.push({ provider: p.id, usable: active !== undefined, mode: p.mode, credentials: entries })
      }
      if (args.json) yield* event({ providers: out })
      if (unusable) yield* exitWith(ExitCode.AuthRequired)
    })
).pipe(Command.withDescription("show every provider's credentials, where they come from and when they expire"))
