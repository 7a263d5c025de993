/**
 * Opens a URL in the person's browser, or says why it did not (no display, SSH, CI).
 * Its Node layer is in `@agent-auth/node`; the URL is always printed regardless.
 */
import type { Effect } from "effect"
import { Context, Effect as E, Layer } from "effect"

export type OpenResult =
  | { readonly _tag: "Opened" }
  | { readonly _tag: "Skipped"; readonly reason: string }

export interface BrowserLauncherShape {
  readonly open: (url: string) => Effect.Effect<OpenResult>
}

export class BrowserLauncher extends Context.Tag("@agent-auth/core/BrowserLauncher")<BrowserLauncher, BrowserLauncherShape>() {}

/** Never opens anything (`--no-browser`, servers, tests). */
export const layerNone = (reason = "--no-browser"): Layer.Layer<BrowserLauncher> =>
  Layer.succeed(BrowserLauncher, { open: () => E.succeed({ _tag: "Skipped", reason }) })
