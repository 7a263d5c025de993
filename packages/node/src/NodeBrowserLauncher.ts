/**
 * The Node layer of `BrowserLauncher`, on the `open` package. `open` is imported only when
 * a browser is really opened, so commands that never log in do not pay for loading it.
 *
 * It does not try where a browser would be useless or wrong — CI, SSH (the browser would
 * open on the remote machine), a Unix without a display, `BROWSER=none` — and says why;
 * the login URL is printed regardless, so the person can open it by hand.
 */
import type { ChildProcess } from "node:child_process"
import { BrowserLauncher } from "@agent-auth/core"
import { Duration, Effect, Layer } from "effect"

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
  if (needsDisplay && !isSet(env["DISPLAY"]) && !isSet(env["WAYLAND_DISPLAY"])) return "no display"
  return undefined
}

/** Opens `url` with the `open` package; resolves once the opener process has started. */
const openWithPackage = async (url: string): Promise<void> => {
  const { default: open } = await import("open")
  const child: ChildProcess = await open(url)
  await new Promise<void>((resolve, reject) => {
    // `open` does not wait for the spawn, and an unheard `error` event would crash the CLI.
    child.once("error", reject)
    if (child.pid !== undefined) resolve()
    else child.once("spawn", () => resolve())
  })
}

export interface MakeOptions {
  /** Read at each `open`; defaults to `process`. */
  readonly environment?: (() => LaunchEnvironment) | undefined
  /** Defaults to the `open` package. */
  readonly openUrl?: ((url: string) => Promise<void>) | undefined
  /** How long starting the opener may take before giving up. */
  readonly timeout?: Duration.DurationInput | undefined
}

export const make = (options: MakeOptions = {}): BrowserLauncher.BrowserLauncherShape => {
  const environment = options.environment ?? currentEnvironment
  const openUrl = options.openUrl ?? openWithPackage
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
        const reason = skipReason(environment())
        if (reason !== undefined) return Effect.succeed({ _tag: "Skipped", reason })
        return Effect.tryPromise(() => openUrl(url)).pipe(
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
}

const describe = (error: unknown): string => {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error
  return cause instanceof Error ? cause.message : String(cause)
}

/** Opens the person's browser with the `open` package, unless `skipReason` says not to. */
export const layer: Layer.Layer<BrowserLauncher.BrowserLauncher> = Layer.sync(BrowserLauncher.BrowserLauncher, () => make())

/** A launcher with an injected environment and opener (tests, embedders). */
export const layerWith = (options: MakeOptions): Layer.Layer<BrowserLauncher.BrowserLauncher> =>
  Layer.succeed(BrowserLauncher.BrowserLauncher, make(options))
