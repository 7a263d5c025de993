/**
 * The Node layer of `BrowserLauncher`. The authorization URL (its state and PKCE
 * challenge) is never put on a command line, where every local user can read it from
 * `/proc/<pid>/cmdline`: the browser is given a file instead, an HTML page that sends it
 * to the URL, written 0600 in a 0700 folder of its own and removed when the login's scope
 * closes. The file goes to `BROWSER` (a command, the file appended as its last argument,
 * as `gh` does) when it is set, else to the `open` package (`xdg-open`, `open`, `start`),
 * imported only when a browser is really opened.
 *
 * It does not try where a browser would be useless or wrong — CI, SSH (the browser would
 * open on the remote machine), a Unix without a display and no `BROWSER`, `BROWSER=none`
 * — and says why; the login URL is printed regardless, so the person can open it by hand.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { BrowserLauncher } from "@agent-auth/core"
import { Duration, Effect, Layer, type Scope } from "effect"

/** What the decision depends on; tests pass a fake one instead of `process`. */
export interface LaunchEnvironment {
  readonly platform: string
  readonly env: Readonly<Record<string, string | undefined>>
}

const currentEnvironment = (): LaunchEnvironment => ({ platform: process.platform, env: process.env })

const isSet = (value: string | undefined): boolean => value !== undefined && value !== ""

/** Why a browser should not be opened here, or `undefined` when it should be tried. */
export const skipReason = ({ env, platform }: LaunchEnvironment): string | undefined => {
  if (env["BROWSER"]?.toLowerCase() === "none") return "BROWSER=none"
  const ci = env["CI"]
  if (isSet(ci) && ci !== "0" && ci?.toLowerCase() !== "false") return "running under CI"
  if (isSet(env["SSH_CONNECTION"]) || isSet(env["SSH_TTY"])) {
    return "over SSH, the browser would open on the remote machine"
  }
  // macOS and Windows open browsers without X11/Wayland; so does WSL (through Windows).
  const needsDisplay = platform !== "darwin" && platform !== "win32" &&
    !isSet(env["WSL_DISTRO_NAME"]) && !isSet(env["WSL_INTEROP"])
  // A `BROWSER` command is the person's choice of how to open a page (a text browser, a forwarder).
  if (needsDisplay && !isSet(env["DISPLAY"]) && !isSet(env["WAYLAND_DISPLAY"]) && !isSet(env["BROWSER"])) return "no display"
  return undefined
}

/** Opens `target` (the redirect page's path) with the `open` package; resolves once the opener process has started. */
const openWithPackage = async (target: string): Promise<void> => {
  const { default: open } = await import("open")
  await started(await open(target))
}

/** Resolves once `child` has started; an unheard `error` event would crash the CLI. */
const started = (child: ChildProcess): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    child.once("error", reject)
    if (child.pid !== undefined) resolve()
    else child.once("spawn", () => resolve())
  })

/** `BROWSER` as words: split on whitespace, with '…' and "…" quoting (as a shell would for a simple command). */
export const commandWords = (command: string): Array<string> => {
  const words: Array<string> = []
  for (const m of command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3]!)
  return words
}

/** Runs the `BROWSER` command with `target` appended as its last argument, detached. */
export const openWithCommand = (command: string) => async (target: string): Promise<void> => {
  const [program, ...args] = commandWords(command)
  if (program === undefined) throw new Error("BROWSER is empty")
  const child = spawn(program, [...args, target], { detached: true, stdio: "ignore" })
  await started(child)
  child.unref()
}

const escapeHtml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** The page the browser is given: it goes on to `url` at once, with a link for browsers without scripts. */
export const redirectPage = (url: string): string => {
  const href = escapeHtml(url)
  return `<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url=${href}">
<title>agent-auth: continue to sign in</title></head>
<body><p><a href="${href}">Continue to sign in</a></p>
<script>location.replace(${JSON.stringify(url).replace(/</g, "\\u003c")})</script></body></html>
`
}

/**
 * The private folder of this launcher's pages (0700, made on first use) and the page writer.
 * `remove` deletes the folder and everything in it.
 */
const pages = () => {
  let dir: string | undefined
  let count = 0
  return {
    write: (url: string): string => {
      dir ??= Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "agent-auth-browser-"))
      Fs.chmodSync(dir, 0o700)
      const file = NodePath.join(dir, `login-${++count}.html`)
      Fs.writeFileSync(file, redirectPage(url), { mode: 0o600, flag: "wx" })
      return file
    },
    remove: () => {
      if (dir !== undefined) Fs.rmSync(dir, { recursive: true, force: true })
      dir = undefined
    }
  }
}

export interface MakeOptions {
  /** Read at each `open`; defaults to `process`. */
  readonly environment?: (() => LaunchEnvironment) | undefined
  /**
   * Opens the redirect page (its path: never the URL itself). Defaults to the `BROWSER`
   * command when it is set, else the `open` package.
   */
  readonly openUrl?: ((target: string) => Promise<void>) | undefined
  /** How long starting the opener may take before giving up. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * A launcher whose pages live until the scope closes (the login's): the browser may read
 * its page well after the opener process returned.
 */
export const make = (options: MakeOptions = {}): Effect.Effect<BrowserLauncher.BrowserLauncherShape, never, Scope.Scope> =>
  Effect.map(Effect.acquireRelease(Effect.sync(pages), (p) => Effect.sync(() => p.remove())), (files) => {
    const environment = options.environment ?? currentEnvironment
    const timeout = options.timeout ?? Duration.seconds(10)
    return {
      open: (url) =>
        Effect.suspend((): Effect.Effect<BrowserLauncher.OpenResult> => {
          // The URL may come from configuration or discovery; hand nothing but http(s) to the OS opener.
          let protocol: string
          try {
            protocol = new URL(url).protocol
          } catch {
            return Effect.succeed({ _tag: "Skipped", reason: "not a valid URL" })
          }
          if (protocol !== "https:" && protocol !== "http:") {
            return Effect.succeed({ _tag: "Skipped", reason: `refusing to open a ${protocol} URL` })
          }
          const env = environment()
          const reason = skipReason(env)
          if (reason !== undefined) return Effect.succeed({ _tag: "Skipped", reason })
          const browser = env.env["BROWSER"]
          const opener = options.openUrl ?? (isSet(browser) ? openWithCommand(browser!) : openWithPackage)
          return Effect.try(() => files.write(url)).pipe(
            Effect.flatMap((page) => Effect.tryPromise(() => opener(page))),
            Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error("the browser opener did not start") }),
            Effect.as<BrowserLauncher.OpenResult>({ _tag: "Opened" }),
            Effect.catchAll((error) =>
              Effect.succeed<BrowserLauncher.OpenResult>({
                _tag: "Skipped",
                reason: `could not open a browser: ${describe(error)}`
              })
            )
          )
        })
    }
  })

const describe = (error: unknown): string => {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error
  return cause instanceof Error ? cause.message : String(cause)
}

/** Opens the person's browser (`BROWSER`, else the `open` package), unless `skipReason` says not to. */
export const layer: Layer.Layer<BrowserLauncher.BrowserLauncher> = Layer.scoped(BrowserLauncher.BrowserLauncher, make())

/** A launcher with an injected environment and opener (tests, embedders). */
export const layerWith = (options: MakeOptions): Layer.Layer<BrowserLauncher.BrowserLauncher> =>
  Layer.scoped(BrowserLauncher.BrowserLauncher, make(options))
