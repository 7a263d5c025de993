/**
 * Which stored account a command acts on, and the default account per provider.
 *
 * Without `--account`, a command acts on what `CredentialResolver.resolve` would use: the
 * eligible stored sources of `sources(provider)` (the default account of each kind). The
 * default is recorded in config.json `defaults` by `agent-auth use`: a preference, not a
 * secret, that holds whatever the store (file, Codex, memory) and that an admin may pin.
 */
import { AuthConfig, ConfigInvalid, CredentialResolver, NotLoggedIn, TokenStore, UsageError } from "@agent-auth/core"
import type { Domain, Provider } from "@agent-auth/core"
import { NodeFiles } from "@agent-auth/node"
import { Effect, Either } from "effect"
import * as fs from "node:fs/promises"

const notLoggedIn = (p: Provider.ProviderConfig, account?: string) =>
  new NotLoggedIn({
    provider: p.id,
    envVars: p.takesApiKey ? p.apiKeyEnv : [],
    canLogin: p.canLogin,
    ...(account === undefined ? {} : { account })
  })

/** Where a key that is not stored comes from, in words: "the environment variable OPENAI_API_KEY". */
const keyOrigin = (p: Provider.ProviderConfig, s: CredentialResolver.Source): string =>
  s._tag === "Env" ? `the environment variable ${s.origin.variable}` : s._tag === "Config" ? `config.json (apiKeys.${p.id})` : "a stored key"

/**
 * Why there is nothing for `what` to act on, told from what is there: an account that is
 * not stored, an API key (nothing to refresh; from the environment or config.json, nothing
 * to log out of), or no credential at all. Never advice to set a variable that is set.
 */
const nothingFor = (p: Provider.ProviderConfig, account: string | undefined, what: "refresh" | "logout") =>
  Effect.gen(function*() {
    if (account !== undefined) return yield* notLoggedIn(p, account)
    const resolver = yield* CredentialResolver.CredentialResolver
    const found = yield* resolver.sources(p.id)
    const key = found.find((s) => s.usable && (s._tag === "Env" || s._tag === "Config" || s._tag === "StoredKey"))
    if (key === undefined) return yield* notLoggedIn(p)
    const origin = keyOrigin(p, key)
    const signIn = p.canLogin ? ` \`agent-auth login ${p.id}\` signs in instead.` : ""
    return yield* new UsageError({
      source: "command line",
      reason: what === "refresh"
        ? `${p.id} uses an API key (from ${origin}); an API key has nothing to refresh.${signIn}`
        : `Nothing is stored for ${p.id} to log out of; its API key comes from ${origin}: ${key._tag === "Env" ? "unset it" : "remove it there"} to stop using it.`
    })
  })

/** The stored credentials `resolve` would use (the named account's, else the default account's of each kind). */
export const chosenStored = (p: Provider.ProviderConfig, account: string | undefined) =>
  Effect.gen(function*() {
    const resolver = yield* CredentialResolver.CredentialResolver
    const chosen: Array<Domain.StoredCredential> = []
    for (const s of yield* resolver.sources(p.id, { account })) {
      if (s.eligible && (s._tag === "StoredKey" || s._tag === "OAuth")) chosen.push(s.credential)
    }
    if (chosen.length === 0) return yield* nothingFor(p, account, "logout")
    return chosen as ReadonlyArray<Domain.StoredCredential>
  })

/** The OAuth login `resolve` would refresh: the named account's, else the default one. */
export const chosenLogin = (p: Provider.ProviderConfig, account: string | undefined) =>
  Effect.gen(function*() {
    const resolver = yield* CredentialResolver.CredentialResolver
    for (const s of yield* resolver.sources(p.id, { account })) {
      if (s.eligible && s._tag === "OAuth") return s.credential
    }
    return yield* nothingFor(p, account, "refresh")
  })

/** Every stored account name of a provider, in store order, each once. */
export const storedAccounts = (p: Provider.ProviderConfig) =>
  Effect.map(Effect.flatMap(TokenStore.TokenStore, (store) => store.list(p.id)), (all) => [...new Set(all.map((c) => c.account))])

/** The default account recorded for a provider (it may no longer be stored). */
export const recordedDefault = (p: Provider.ProviderConfig) =>
  Effect.map(AuthConfig.AuthConfig, (config) => config.file.defaults?.[p.id])

/**
 * Records `account` as the provider's default in config.json, keeping every other field as
 * written. Whole-file replacement (temp file, fsync, rename), so a reader never sees half a
 * file; it is written 0600 (config.json may hold API keys).
 */
export const setDefaultAccount = (provider: string, account: string) =>
  Effect.gen(function*() {
    const config = yield* AuthConfig.AuthConfig
    const file = config.configPath
    const fail = (reason: string) => new ConfigInvalid({ source: file, field: "defaults", reason })
    const text = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? "{}" : Promise.reject(e))),
      catch: (e) => fail(`could not read it (${(e as Error).message})`)
    })
    const json = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => fail("the file is not JSON") })
    if (typeof json !== "object" || json === null || Array.isArray(json)) return yield* fail("the file is not a JSON object")
    const current = (json as { defaults?: unknown }).defaults
    const defaults = typeof current === "object" && current !== null ? { ...current, [provider]: account } : { [provider]: account }
    const next = JSON.stringify({ ...json, defaults }, null, 2) + "\n"
    // What we write must load: the same decoder as at start-up.
    const checked = AuthConfig.parseConfigFile(next, file)
    if (Either.isLeft(checked)) return yield* checked.left
    yield* NodeFiles.writeText(file, next).pipe(Effect.mapError((e) => fail(`could not write it (${e.message})`)))
  })
