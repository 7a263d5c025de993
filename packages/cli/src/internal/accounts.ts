/**
 * Which stored account a command acts on, and the default account per provider.
 *
 * Without `--account`, a command acts on what `CredentialResolver.resolve` would use: the
 * eligible stored sources of `sources(provider)` (the default account of each kind). The
 * default is recorded in config.json `defaults` by `agent-auth use`: a preference, not a
 * secret, that holds whatever the store (file, Codex, memory) and that an admin may pin.
 */
import { AuthConfig, ConfigInvalid, CredentialResolver, NotLoggedIn, TokenStore } from "@agent-auth/core"
import type { Domain, Provider } from "@agent-auth/core"
import { NodeFiles } from "@agent-auth/node"
import { Effect, Either } from "effect"
import * as fs from "node:fs/promises"

const notLoggedIn = (p: Provider.ProviderConfig) =>
  new NotLoggedIn({ provider: p.id, envVars: p.takesApiKey ? p.apiKeyEnv : [], canLogin: p.canLogin })

/** The stored credentials `resolve` would use (the named account's, else the default account's of each kind). */
export const chosenStored = (p: Provider.ProviderConfig, account: string | undefined) =>
  Effect.gen(function*() {
    const resolver = yield* CredentialResolver.CredentialResolver
    const chosen: Array<Domain.StoredCredential> = []
    for (const s of yield* resolver.sources(p.id, { account })) {
      if (s.eligible && (s._tag === "StoredKey" || s._tag === "OAuth")) chosen.push(s.credential)
    }
    if (chosen.length === 0) return yield* notLoggedIn(p)
    return chosen as ReadonlyArray<Domain.StoredCredential>
  })

/** The OAuth login `resolve` would refresh: the named account's, else the default one. */
export const chosenLogin = (p: Provider.ProviderConfig, account: string | undefined) =>
  Effect.gen(function*() {
    const resolver = yield* CredentialResolver.CredentialResolver
    for (const s of yield* resolver.sources(p.id, { account })) {
      if (s.eligible && s._tag === "OAuth") return s.credential
    }
    return yield* notLoggedIn(p)
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
