/**
 * `agent-auth status [<provider>]`, in the manner of `gh auth status`: one block per
 * provider, every credential found and where it came from (the resolver's own `sources`,
 * in the order it considers them), which one is used, every stored account and which is
 * the default, the expiry (absolute and relative), secrets masked. Local state only: no network.
 *
 * No command parsing here: the whole CLI (commands/status.ts) and the small bundle (fast.ts)
 * both run this.
 */
import { CredentialResolver, Domain, ExitCode, Provider, ProviderRegistry, TokenStore } from "@agent-auth/core"
import { NodeKeyringStore, NodeTokenStore } from "@agent-auth/node"
import { Clock, DateTime, Effect, Either } from "effect"
import { exitWith } from "../internal/exit.js"
import { data, event, expiry, MARK, onStdout } from "../internal/output.js"

const { bold, dim, green, red, yellow } = onStdout

type Source = CredentialResolver.Source

/** Why a usable source is not the one used. */
const notUsedBecause = (p: Provider.ProviderConfig, s: Source, active: Source | undefined): string => {
  if (!s.eligible && (s._tag === "StoredKey" || s._tag === "OAuth")) {
    return ` (not the default account; \`agent-auth use ${p.id} ${s.credential.account}\` makes it the default)`
  }
  return active === undefined ? "" : " (not used: another credential comes first)"
}

/**
 * `auto` with credentials shown from its file: why they are not in the keychain, said once.
 * From what costs nothing (the store never probes here): a status must not wait on a
 * keychain that does not answer, nor touch one when nothing is stored.
 */
const keychainNotUsed = (
  store: TokenStore.TokenStoreShape,
  blocks: ReadonlyArray<{ readonly found: ReadonlyArray<Source> }>
) =>
  Effect.gen(function*() {
    const auto = store as Partial<NodeKeyringStore.AutoTokenStore>
    if (auto.keychainNotUsed === undefined || auto.filePath === undefined) return undefined
    const inFile = blocks.some(({ found }) =>
      found.some((s) => (s._tag === "StoredKey" || s._tag === "OAuth") && s.origin.store === auto.filePath)
    )
    if (!inFile) return undefined
    const why = yield* auto.keychainNotUsed
    const when = why.checkedAt === undefined ? "" : `when a secret was stored at ${why.checkedAt.toISOString()}, `
    return {
      text: `Credentials stored in ${auto.filePath} are not in ${NodeKeyringStore.keychainName}: ${when}${why.reason}. ` +
        "The file keeps them in plain text, mode 0600.",
      json: { reason: why.reason, checked_at: why.checkedAt?.toISOString() ?? null, file: auto.filePath }
    }
  })

export interface StatusArgs {
  /** Only this provider (shown even when nothing is found for it). */
  readonly provider: string | undefined
  readonly json: boolean
}

export const status = (args: StatusArgs) =>
  Effect.gen(function*() {
    // The report is this command's data: on stdout, or (with --json) only the JSON there.
    const say = (line: string) => (args.json ? Effect.void : data(line))
    const registry = yield* ProviderRegistry.ProviderRegistry
    const resolver = yield* CredentialResolver.CredentialResolver
    const now = yield* Clock.currentTimeMillis
    const providers = args.provider !== undefined ? [yield* registry.get(args.provider)] : yield* registry.listAll
    // Stored entries the file store could not read: shown here (asking first keeps the store from warning too).
    const store = yield* TokenStore.TokenStore
    const fileStore = store as Partial<NodeTokenStore.FileTokenStore>
    // A file that cannot be read at all fails here as it would below (StoreCorrupted, exit 4).
    const unreadable = fileStore.unreadable === undefined ? [] : yield* fileStore.unreadable
    const unreadableOf = (id: string) => unreadable.filter((e) => e.provider === id)
    // Where they are: the credentials file (under `auto`, not the keychain it may also use).
    const unreadableIn = (store as Partial<NodeKeyringStore.AutoTokenStore>).filePath ?? store.location
    const blocks: Array<{ p: Provider.ProviderConfig; found: ReadonlyArray<Source> }> = []
    for (const p of providers) {
      const found = yield* resolver.sources(p.id)
      // Without a provider argument, show only the providers that have something.
      if (found.length > 0 || args.provider !== undefined || unreadableOf(p.id).length > 0) blocks.push({ p, found })
    }
    let unusable = blocks.length === 0
    const out: Array<Record<string, unknown>> = []
    if (blocks.length === 0) yield* say("Not logged in to any provider. `agent-auth providers` lists them; `agent-auth login <provider>` signs in.")
    for (const { p, found } of blocks) {
      // What `resolve` uses: the first eligible source that needs no new sign-in.
      const active = found.find((s) => s.eligible && s.usable)
      if (active === undefined) unusable = true
      yield* say(bold(p.id))
      const bad = unreadableOf(p.id)
      for (const e of bad) {
        yield* say(`  ${red(MARK.bad)} Stored login (account ${e.account ?? "?"}) in ${unreadableIn} could not be read (${e.reason}): ${NodeTokenStore.unreadableEntryFix(e)}`)
      }
      if (found.length === 0 && bad.length === 0) {
        const ways = [
          ...(p.takesApiKey && p.apiKeyEnv.length > 0 ? [`set ${p.apiKeyEnv.join(" or ")}`] : []),
          `run \`${Provider.loginCommand(p) ?? (p.canLogin ? `agent-auth login ${p.id}` : `agent-auth login ${p.id} --with-api-key`)}\``
        ]
        yield* say(`  ${red(MARK.bad)} Not logged in: ${ways.join(", or ")}`)
      }
      const accounts = [
        ...new Set(found.flatMap((s) => (s._tag === "StoredKey" || s._tag === "OAuth" ? [s.credential.account] : [])))
      ]
      const entries: Array<Record<string, unknown>> = []
      for (const s of found) {
        const used = s === active
        const mark = used ? green(MARK.ok) : s.usable ? dim(MARK.other) : red(MARK.bad)
        const note = used || !s.usable ? "" : dim(notUsedBecause(p, s, active))
        const common = { active: used, eligible: s.eligible, usable: s.usable }
        switch (s._tag) {
          case "Env":
            yield* say(`  ${mark} API key from the environment variable ${s.origin.variable}${note}`)
            yield* say(`    - Key: ${Domain.mask(s.key)}`)
            entries.push({ source: "env", variable: s.origin.variable, ...common, key: Domain.mask(s.key) })
            break
          case "Config":
            yield* say(`  ${mark} API key from ${s.origin.path} (apiKeys.${p.id})${note}`)
            yield* say(`    - Key: ${Domain.mask(s.key)}`)
            entries.push({ source: "config", path: s.origin.path, ...common, key: Domain.mask(s.key) })
            break
          case "StoredKey":
            yield* say(`  ${mark} API key stored in ${s.origin.store} (account ${s.credential.account})${note}`)
            yield* say(`    - Key: ${Domain.mask(s.credential.key)}`)
            entries.push({ source: "stored_key", store: s.origin.store, account: s.credential.account, ...common, key: Domain.mask(s.credential.key) })
            break
          case "OAuth": {
            const c = s.credential
            const t = c.tokens
            const who = c.claims.email ?? c.account
            // The account is named apart only when it is not the email shown.
            const named = who === c.account ? "" : ` (account ${c.account})`
            yield* say(`  ${mark} Logged in with OAuth as ${bold(who)}${named}, stored in ${s.origin.store}${note}`)
            if (c.refusal !== undefined) {
              yield* say(`    - ${red(`Refused by ${p.id} (${c.refusal.reason}) at ${DateTime.formatIso(c.refusal.at)}`)}: run \`agent-auth login ${p.id}\``)
            }
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
              store: s.origin.store,
              account: c.account,
              ...common,
              email: c.claims.email ?? null,
              plan: c.claims.plan ?? null,
              organization: c.claims.organization ?? null,
              account_id: c.claims.accountId ?? null,
              scopes: t.scopes,
              expires_at: t.expiresAt === undefined ? null : DateTime.formatIso(t.expiresAt),
              expires_in_seconds: t.expiresAt === undefined ? null : Math.round((DateTime.toEpochMillis(t.expiresAt) - now) / 1000),
              refreshable: t.refreshToken !== undefined,
              refused: c.refusal === undefined ? null : { reason: c.refusal.reason, at: DateTime.formatIso(c.refusal.at) },
              token: Domain.mask(t.accessToken)
            })
            break
          }
          case "Adc": {
            const o = s.origin
            if (Either.isRight(s.adc)) {
              yield* say(`  ${mark} Google Application Default Credentials ${o.path} (${o.type}: ${bold(o.account ?? "")})${note}`)
              yield* say(`    - Token: obtained when used, held in memory only`)
            } else {
              yield* say(`  ${mark} ${s.adc.left.message}`)
            }
            entries.push({
              source: "adc",
              path: o.path,
              type: o.type ?? null,
              account: o.account ?? null,
              ...common,
              ...(Either.isLeft(s.adc) ? { error: s.adc.left.message } : {})
            })
            break
          }
        }
      }
      // The default account: the eligible stored one (the recorded default when it is stored, else the first).
      const chosen = found.find((s) => s.eligible && (s._tag === "StoredKey" || s._tag === "OAuth"))
      const defaultAccount = chosen !== undefined && (chosen._tag === "StoredKey" || chosen._tag === "OAuth")
        ? chosen.credential.account
        : null
      if (accounts.length > 1) {
        yield* say(`  Accounts: ${accounts.map((a) => (a === defaultAccount ? `${bold(a)} (default)` : a)).join(", ")}` +
          dim(` — \`agent-auth use ${p.id} <account>\` changes the default, \`--account\` picks one for a command`))
      }
      for (const e of bad) {
        entries.push({ source: "unreadable", store: unreadableIn, account: e.account ?? null, active: false, eligible: false, usable: false, error: e.reason })
      }
      out.push({
        provider: p.id,
        usable: active !== undefined,
        mode: p.mode,
        accounts,
        default_account: defaultAccount,
        credentials: entries
      })
    }
    // The file store says what is unsafe about its file and folder (open to others, a symlink).
    const check = fileStore.check
    const shown = new Set(blocks.map((b) => b.p.id))
    const warnings = [
      ...(check === undefined ? [] : yield* check.pipe(Effect.orElseSucceed(() => []))),
      // Unreadable entries of no provider shown above.
      ...unreadable.filter((e) => e.provider === undefined || !shown.has(e.provider))
        .filter(() => args.provider === undefined)
        .map((e) => NodeTokenStore.unreadableEntryMessage(unreadableIn, e))
    ]
    for (const w of warnings) yield* say(yellow(`! ${w}`))
    const keychain = yield* keychainNotUsed(store, blocks)
    if (keychain !== undefined) yield* say(yellow(`! ${keychain.text}`))
    // A SQL store (@agent-auth/sql) names its database and principal even when it holds nothing.
    const sqlStore = "principal" in store ? store.location : undefined
    if (sqlStore !== undefined) yield* say(dim(`Store: ${sqlStore}`))
    if (args.json) {
      yield* event({
        providers: out,
        ...(warnings.length > 0 ? { warnings } : {}),
        ...(keychain !== undefined ? { keychain_not_used: keychain.json } : {}),
        ...(sqlStore !== undefined ? { store: sqlStore } : {})
      })
    }
    if (unusable) yield* exitWith(ExitCode.AuthRequired)
  })
