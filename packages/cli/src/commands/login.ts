/** `agent-auth login <provider>`: browser (PKCE), device code, pasted redirect, or an API key from stdin. */
import { Args, Command, Options } from "@effect/cli"
import {
  BrowserLauncher,
  ConfigInvalid,
  DeviceFlow,
  Domain,
  PkceFlow,
  ProviderRegistry,
  TokenStore
} from "@agent-auth/core"
import { Clock, DateTime, Effect, Either, Option, Redacted } from "effect"
import { demoBrowserLauncher } from "../internal/demo.js"
import * as Layers from "../internal/layers.js"
import { account, json, optionValue, parseDuration, verbose } from "../internal/args.js"
import { bold, event, expiry, link, say, stdinIsTty, withSpinner } from "../internal/output.js"
import { pastedLines, readSecretFromStdin } from "../internal/stdin.js"

const provider = Args.text({ name: "provider" }).pipe(Args.optional)

export const login = Command.make(
  "login",
  {
    provider,
    noBrowser: Options.boolean("no-browser").pipe(Options.withDescription("print the URL and do not open a browser")),
    device: Options.boolean("device").pipe(Options.withDescription("log in with a device code (for SSH, containers)")),
    port: Options.integer("port").pipe(Options.optional, Options.withDescription("loopback port for the redirect")),
    timeout: Options.text("timeout").pipe(Options.optional, Options.withDescription("how long to wait, e.g. 5m")),
    withApiKey: Options.boolean("with-api-key").pipe(Options.withDescription("store an API key read from stdin")),
    account,
    json,
    verbose
  },
  (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      if (Option.isNone(args.provider)) {
        return yield* new ConfigInvalid({
          source: "command line",
          field: "provider",
          reason: `name the provider to log in to: ${registry.list.map((p) => p.id).join(", ")}`
        })
      }
      const p = yield* registry.get(args.provider.value)
      const accountName = optionValue(args.account)

      if (args.withApiKey || !p.canLogin) {
        const store = yield* TokenStore.TokenStore
        if (!args.withApiKey && stdinIsTty() === false) {
          yield* say(`${p.displayName} takes an API key; reading it from stdin.`)
        } else if (stdinIsTty()) {
          yield* say(`Paste the API key for ${p.displayName} and press Enter (it is not echoed):`)
        }
        const key = yield* readSecretFromStdin
        if (Redacted.value(key).length === 0) {
          return yield* new ConfigInvalid({ source: "stdin", field: "api key", reason: "no key was given on stdin" })
        }
        const now = DateTime.unsafeMake(yield* Clock.currentTimeMillis)
        const credential = Domain.ApiKeyCredential.make({ provider: p.id, account: accountName ?? "default", key, obtainedAt: now })
        yield* store.set(credential)
        if (args.json) yield* event({ event: "logged_in", provider: p.id, account: credential.account, expires_at: null })
        yield* say(`Stored an API key for ${p.displayName} (${Domain.mask(key)}) in ${store.location}.`)
        return
      }

      const onEvent = (e: PkceFlow.LoginEvent): Effect.Effect<void> => {
        switch (e._tag) {
          case "AuthorizationUrl":
            return Effect.zipRight(
              args.json ? event({ event: "authorization_url", url: e.url, redirect_uri: e.redirectUri }) : Effect.void,
              say(`Open this URL to sign in to ${p.displayName}:\n\n  ${link(e.url)}\n`)
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
              args.json
                ? event({
                  event: "device_code",
                  verification_uri: e.verificationUri,
                  user_code: e.userCode,
                  ...(e.verificationUriComplete === undefined ? {} : { verification_uri_complete: e.verificationUriComplete }),
                  expires_in: e.expiresInSeconds
                })
                : Effect.void,
              say(
                `To sign in to ${p.displayName}, open\n\n  ${link(e.verificationUri)}\n\nand enter the code\n\n  ${bold(e.userCode)}\n\n` +
                  `The code expires in ${Math.round(e.expiresInSeconds / 60)} min.`
              )
            )
        }
      }

      let credential: Domain.OAuthCredential
      if (args.device) {
        const device = yield* DeviceFlow.DeviceFlow
        credential = yield* withSpinner("waiting for the code to be entered…", device.login(p.id, { account: accountName, onEvent }))
      } else {
        const timeout = Option.isSome(args.timeout) ? parseDuration(args.timeout.value) : Either.right(undefined)
        if (Either.isLeft(timeout)) return yield* new ConfigInvalid({ source: "command line", field: "--timeout", reason: timeout.left })
        const flow = yield* PkceFlow.PkceFlow
        // The paste prompt exists only on a terminal; a closed or redirected stdin never ends a login.
        const pasted = stdinIsTty() ? yield* pastedLines("Or paste the redirect URL (or code#state) here: ") : undefined
        const run = flow.login(p.id, {
          account: accountName,
          onEvent,
          pasted,
          port: optionValue(args.port),
          timeout: timeout.right
        })
        const waiting = pasted === undefined ? withSpinner("waiting for the browser…", run) : run
        credential = yield* waiting.pipe(
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
          (exp === undefined ? "" : ` The access token expires ${yield* expiry(exp)}; it is refreshed when due.`) +
          `\nStored in ${store.location}.`
      )
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("sign in to a provider (browser, --device, or --with-api-key)"))

