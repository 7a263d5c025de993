/**
 * `agent-auth login [<provider>]`: browser (PKCE), device code, pasted redirect, or an API
 * key from stdin (never from argv: no option takes a key, so it stays out of shell history
 * and `ps`). Without a provider, on a terminal: a menu of every provider and method, the
 * usable ones marked; without a terminal: a usage error listing the same choices.
 */
import {
  BrowserLauncher,
  CredentialResolver,
  DeviceFlow,
  Domain,
  LoginCancelled,
  PkceFlow,
  PortUnavailable,
  ProviderRegistry,
  TokenStore,
  UsageError
} from "@agent-auth/core"
import type { Provider } from "@agent-auth/core"
import { Clock, DateTime, type Duration, Effect, Either, Option, Redacted } from "effect"
import { demoBrowserLauncher, demoServer } from "../internal/demo.js"
import { account, json, provider as providerArg, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { select } from "../internal/menu.js"
import { bold, dim, event, expiry, link, say, stderrIsTty, stdinIsTty, withSpinner, yellow } from "../internal/output.js"
import { writableStore } from "../internal/writable.js"
import { pastedLines, readSecretFromStdin } from "../internal/stdin.js"
import { sourceText } from "./providers.js"


type Method = "browser" | "device" | "api_key"

/** One way to log in, as the menu and the usage error show it. */
interface Choice {
  readonly provider: Provider.ProviderConfig
  readonly method: Method
  readonly label: string
  readonly command: string
}

/** The ways to log in to each provider: its sign-in (browser, or device code with `--device`), and an API key where it takes one. */
export const choicesOf = (list: ReadonlyArray<Provider.ProviderConfig>, device: boolean): Array<Choice> =>
  list.flatMap((p) => {
    const out: Array<Choice> = []
    const signIn = p.kind === "openai" ? "sign in with ChatGPT" : "sign in"
    if (p.canLogin && (!device || p.device !== "none")) {
      out.push({
        provider: p,
        method: device ? "device" : "browser",
        label: `${p.displayName} — ${signIn}${device ? " (device code)" : ""}`,
        command: `agent-auth login ${p.id}${device ? " --device" : ""}`
      })
    }
    // Keys where the provider names a variable for them (an OIDC gateway rarely takes one).
    if (p.takesApiKey && (p.kind === "api_key" || p.apiKeyEnv.length > 0)) {
      out.push({ provider: p, method: "api_key", label: `${p.displayName} — API key`, command: `agent-auth login ${p.id} --with-api-key` })
    }
    return out
  })

export const login = C.make({
  name: "login",
  summary: "sign in to a provider (browser, --device, or an API key with --with-api-key)",
  description:
    "Signs in to the provider in your browser (OAuth with PKCE) and stores the login; the sign-in URL is always printed, and on a terminal you may paste the address your browser was sent to instead. --device signs in with a code typed on another device. --with-api-key stores an API key read from stdin (never from the command line). Without a provider, on a terminal: a menu.",
  args: { provider: C.optionalArg(providerArg) },
  flags: {
    noBrowser: C.boolean("no-browser", "print the sign-in URL and do not open a browser"),
    device: C.boolean("device", "sign in with a code entered on another device (over SSH, in a container)"),
    port: C.value("port", {
      description: "the loopback port the browser is sent back to (0–65535; default: the provider's)",
      placeholder: "N",
      parse: C.port
    }),
    timeout: C.value("timeout", {
      description: "how long to wait for the sign-in, e.g. 90s, 5m (default 5m)",
      placeholder: "DURATION",
      parse: C.duration
    }),
    withApiKey: C.boolean("with-api-key", "store an API key read from stdin instead of signing in"),
    account,
    json,
    verbose
  },
  examples: [
    { command: "agent-auth login openai", does: "sign in with your ChatGPT account in the browser" },
    { command: "agent-auth login anthropic --with-api-key < key.txt", does: "store an API key read from a file" },
    { command: "agent-auth login openai --device", does: "sign in over SSH with a code" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      if (args.provider !== undefined) {
        const p = yield* registry.get(args.provider)
        if (p.kind === "google_adc") return yield* explainAdc(p)
        const method: Method = args.withApiKey || !p.canLogin ? "api_key" : args.device ? "device" : "browser"
        return yield* loginWith(p, method, args)
      }
      const choices = choicesOf(registry.list, args.device).filter((c) => !args.withApiKey || c.method === "api_key")
      if (!(stdinIsTty() && stderrIsTty())) {
        const width = Math.max(...choices.map((c) => c.command.length))
        return yield* new UsageError({
          source: "command line",
          reason: `Name the provider to log in to (there is no terminal for a menu):\n` +
            choices.map((c) => `  ${c.command.padEnd(width)}  ${c.label}`).join("\n") +
            `\n(an API key is read from stdin: \`agent-auth login <provider> --with-api-key < key-file\`)`
        })
      }
      // Marks for what already works, from local state only; a menu is still worth showing when that fails.
      const resolver = yield* CredentialResolver.CredentialResolver
      const ready = new Map(
        (yield* resolver.available().pipe(Effect.orElseSucceed(() => []))).map((a) => [a.provider.id, a.source])
      )
      const noteFor = (c: Choice): string | undefined => {
        const source = ready.get(c.provider.id)
        if (source === undefined) return undefined
        // The mark goes on the way that is in use: the sign-in for a login, the key line for a key.
        const matches = source._tag === "OAuth" ? c.method !== "api_key" : c.method === "api_key"
        return matches ? `✓ usable now (${sourceText(source)})` : undefined
      }
      const chosen = yield* select(
        "Log in to which provider?",
        choices.map((c) => ({ label: c.label, note: noteFor(c), value: c })),
        { bold, dim }
      )
      if (Option.isNone(chosen)) return yield* new LoginCancelled({ provider: "a provider" })
      const c = chosen.value
      yield* say(dim(`(next time: ${c.command})`))
      const run = loginWith(c.provider, c.method, args)
      // The demo's embedded server starts only for command lines naming it; this one did not.
      return yield* c.provider.id === "demo" ? Effect.provide(run, demoServer(["login", "demo"])) : run
    })
})

/**
 * `login vertex`: nothing to sign in to here. Vertex AI takes Google's Application Default
 * Credentials, which gcloud writes (agent-auth reads them and stores nothing); this says
 * how, and whether they are there. Never Gemini CLI's OAuth login (shared/PROVIDERS.md).
 */
const explainAdc = (p: Provider.ProviderConfig) =>
  Effect.gen(function*() {
    yield* say(
      `${p.displayName} uses Google's Application Default Credentials; agent-auth reads them where gcloud keeps them and stores nothing.\n` +
        `  - Your own Google account: run \`gcloud auth application-default login\`, and set GOOGLE_CLOUD_PROJECT.\n` +
        `  - A service account: set GOOGLE_APPLICATION_CREDENTIALS to its JSON key file.`
    )
    const resolver = yield* CredentialResolver.CredentialResolver
    const source = (yield* resolver.sources(p.id)).find((s) => s._tag === "Adc")
    // No file: resolving fails naming where it looked, and the gcloud command.
    if (source === undefined || source._tag !== "Adc") return yield* Effect.asVoid(resolver.resolve(p.id))
    if (Either.isLeft(source.adc)) return yield* Effect.fail(source.adc.left)
    yield* say(
      `Found ${source.origin.path} (${source.origin.type}: ${source.origin.account}); \`agent-auth token ${p.id}\` gets an access token from it.`
    )
  })

interface LoginArgs {
  readonly noBrowser: boolean
  readonly port: number | undefined
  readonly timeout: Duration.Duration | undefined
  readonly withApiKey: boolean
  readonly account: string | undefined
  readonly json: boolean
}

/**
 * What a sign-in says as it goes, on stderr (`--json`: the URL and device code as events on
 * stdout too); `login` and `mcp login` both print with it. `what` names what is signed in to.
 */
export const loginPrinter = (what: string, asJson: boolean) => (e: PkceFlow.LoginEvent): Effect.Effect<void> => {
  switch (e._tag) {
    case "AuthorizationUrl":
      return Effect.zipRight(
        asJson ? event({ event: "authorization_url", url: e.url, redirect_uri: e.redirectUri }) : Effect.void,
        say(`Open this URL to sign in to ${what}:\n\n  ${link(e.url)}\n`)
      )
    case "BrowserOpened":
      return say("Opened your browser; waiting for the sign-in to finish…")
    case "BrowserSkipped":
      return say(`Not opening a browser (${e.reason}); open the URL above yourself.`)
    case "PasteOnly":
      return say(`${e.reason}\nAfter signing in, paste the URL your browser was sent to.`)
    case "PasteRejected":
      return say(`That does not complete this login (${e.reason}). Paste the whole URL from the address bar.`)
    case "DeviceCode":
      return Effect.zipRight(
        asJson
          ? event({
            event: "device_code",
            verification_uri: e.verificationUri,
            user_code: e.userCode,
            ...(e.verificationUriComplete === undefined ? {} : { verification_uri_complete: e.verificationUriComplete }),
            expires_in: e.expiresInSeconds
          })
          : Effect.void,
        say(
          `To sign in to ${what}, open\n\n  ${link(e.verificationUri)}\n\nand enter the code\n\n  ${bold(e.userCode)}\n\n` +
            (e.verificationUriComplete === undefined
              ? ""
              : `or open this address, which carries the code:\n\n  ${link(e.verificationUriComplete)}\n\n`) +
            `The code expires in ${Math.round(e.expiresInSeconds / 60)} min.`
        )
      )
  }
}

/** What to change when a login came without a refresh token: the next thing the config has not asked for yet. */
const noRefreshTokenFix = (p: Provider.ProviderConfig): string => {
  if (!p.scopes.includes("offline_access")) {
    return `Most providers give one for the scope "offline_access": add it to providers.${p.id}.scopes in config.json (some also need authorizeParams "prompt": "consent"), then log in again.`
  }
  if (p.authorizeParams["prompt"] !== "consent") {
    // The README's example asks for offline_access only; oidc-provider, Google and others want a consent prompt too.
    return `It asked for the scope "offline_access"; some servers give a refresh token only with a consent prompt: add "authorizeParams": { "prompt": "consent" } to providers.${p.id} in config.json, then log in again.`
  }
  return `It asked for "offline_access" with a consent prompt: the server does not issue refresh tokens to client ${p.clientId ?? "(none)"}; its administrator can allow them.`
}

const loginWith = (p: Provider.ProviderConfig, method: Method, args: LoginArgs) =>
  Effect.gen(function*() {
    const accountName = args.account

    if (method === "api_key") {
      const store = yield* TokenStore.TokenStore
      if (!p.takesApiKey) {
        return yield* new UsageError({
          source: "command line",
          reason: `${p.id} takes no API key (its mode is ${p.mode}); \`agent-auth login ${p.id}\` signs in.`
        })
      }
      if (!args.withApiKey && stdinIsTty() === false) {
        yield* say(`${p.displayName} takes an API key; reading it from stdin.`)
      }
      const key = yield* readSecretFromStdin(`Paste the API key for ${p.displayName} and press Enter (it is not echoed):`)
      if (Redacted.value(key).length === 0) {
        return yield* new UsageError({ source: "stdin", reason: `No key was given on stdin: \`agent-auth login ${p.id} --with-api-key < key-file\`.` })
      }
      const now = DateTime.unsafeMake(yield* Clock.currentTimeMillis)
      const credential = Domain.ApiKeyCredential.make({ provider: p.id, account: accountName ?? "default", key, obtainedAt: now })
      yield* store.set(credential)
      if (args.json) yield* event({ event: "logged_in", provider: p.id, account: credential.account, expires_at: null })
      yield* say(`Stored an API key for ${p.displayName} (${Domain.mask(key)}) in ${store.locationOf?.(credential) ?? store.location}.`)
      // Say so when another credential comes first (an environment variable, config.json, another account).
      const resolver = yield* CredentialResolver.CredentialResolver
      const first = (yield* resolver.sources(p.id)).find((s) => s.eligible && s.usable)
      if (first !== undefined && !(first._tag === "StoredKey" && first.credential.account === credential.account)) {
        yield* say(`Note: ${sourceText(first)} comes first for ${p.id}; this key is used when it is gone` +
          (first._tag === "StoredKey" ? ` (or with \`agent-auth use ${p.id} ${credential.account}\`).` : "."))
      }
      return
    }

    const onEvent = loginPrinter(p.displayName, args.json)

    // A login whose tokens could not be saved is a sign-in for nothing: find out first.
    yield* writableStore
    let credential: Domain.OAuthCredential
    if (method === "device") {
      const device = yield* DeviceFlow.DeviceFlow
      credential = yield* withSpinner("waiting for the code to be entered…", device.login(p.id, { account: accountName, onEvent }))
    } else {
      const flow = yield* PkceFlow.PkceFlow
      // The paste prompt exists only on a terminal; a closed or redirected stdin never ends a login.
      const pasted = stdinIsTty() ? yield* pastedLines("Or paste the redirect URL (or code#state) here: ") : undefined
      const run = flow.login(p.id, {
        account: accountName,
        onEvent,
        pasted,
        port: args.port,
        timeout: args.timeout
      })
      const waiting = pasted === undefined ? withSpinner("waiting for the browser…", run) : run
      // The loopback server (node:http) and the browser launcher load only for a browser login.
      const Layers = yield* Effect.promise(() => import("../internal/layers.js"))
      credential = yield* waiting.pipe(
        // A busy port the person chose with --port: another port will do.
        Effect.catchTag("PortUnavailable", (e) =>
          Effect.fail(args.port === undefined ? e : new PortUnavailable({ ports: e.ports, provider: e.provider, chosen: true }))),
        Effect.provide(Layers.callbackServer),
        Effect.provide(
          args.noBrowser
            ? BrowserLauncher.layerNone("--no-browser")
            : p.id === "demo"
            ? demoBrowserLauncher // follows the demo server's sign-in by itself: no person, no browser
            : Layers.browserLauncher
        )
      )
    }
    const store = yield* TokenStore.TokenStore
    const exp = credential.tokens.expiresAt
    if (args.json) {
      yield* event({
        event: "logged_in",
        provider: p.id,
        account: credential.account,
        expires_at: exp === undefined ? null : DateTime.formatIso(exp)
      })
    }
    const who = credential.claims.email ?? credential.account
    yield* say(
      `Logged in to ${p.displayName} as ${bold(who)}.` +
        (exp === undefined
          ? ""
          : ` The access token expires ${yield* expiry(exp)}${credential.tokens.refreshToken === undefined ? "." : "; it is refreshed when due."}`) +
        `\nStored in ${store.locationOf?.(credential) ?? store.location}.`
    )
    if (credential.tokens.refreshToken === undefined) {
      const ends = exp === undefined ? "when the provider ends it" : `when the access token expires (${yield* expiry(exp)})`
      yield* say(yellow(`${p.displayName} gave no refresh token, so this login ends ${ends}. ${noRefreshTokenFix(p)}`))
    }
  }).pipe(Effect.scoped)

