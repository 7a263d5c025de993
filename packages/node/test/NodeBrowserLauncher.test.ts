import { BrowserLauncher } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope, TestClock } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as NodeBrowserLauncher from "../src/NodeBrowserLauncher.js"

const URL_ = "https://auth.example.test/authorize?client_id=x&state=s"

const linux = (env: Record<string, string | undefined>): NodeBrowserLauncher.LaunchEnvironment => ({
  platform: "linux",
  env
})
const desktop = { DISPLAY: ":0" }

describe("NodeBrowserLauncher.skipReason", () => {
  it("BROWSER=none", () => {
    expect(NodeBrowserLauncher.skipReason(linux({ ...desktop, BROWSER: "none" }))).toBe("BROWSER=none")
  })

  it("CI", () => {
    expect(NodeBrowserLauncher.skipReason(linux({ ...desktop, CI: "true" }))).toBe("running under CI")
    expect(NodeBrowserLauncher.skipReason({ platform: "darwin", env: { CI: "1" } })).toBe("running under CI")
    // CI=false (or empty) is someone switching it off, not a CI run.
    expect(NodeBrowserLauncher.skipReason(linux({ ...desktop, CI: "false" }))).toBeUndefined()
    expect(NodeBrowserLauncher.skipReason(linux({ ...desktop, CI: "" }))).toBeUndefined()
  })

  it("SSH, even with a forwarded display", () => {
    const reason = "over SSH, the browser would open on the remote machine"
    expect(NodeBrowserLauncher.skipReason(linux({ ...desktop, SSH_CONNECTION: "10.0.0.1 5000 10.0.0.2 22" }))).toBe(
      reason
    )
    expect(NodeBrowserLauncher.skipReason(linux({ ...desktop, SSH_TTY: "/dev/pts/0" }))).toBe(reason)
    expect(NodeBrowserLauncher.skipReason({ platform: "darwin", env: { SSH_TTY: "/dev/ttys001" } })).toBe(reason)
  })

  it("Linux with nothing set has no display", () => {
    expect(NodeBrowserLauncher.skipReason(linux({}))).toBe("no display")
    expect(NodeBrowserLauncher.skipReason(linux({ DISPLAY: "" }))).toBe("no display")
    expect(NodeBrowserLauncher.skipReason({ platform: "freebsd", env: {} })).toBe("no display")
  })

  it("tries where a browser can open", () => {
    expect(NodeBrowserLauncher.skipReason(linux({ DISPLAY: ":0" }))).toBeUndefined()
    expect(NodeBrowserLauncher.skipReason(linux({ WAYLAND_DISPLAY: "wayland-0" }))).toBeUndefined()
    expect(NodeBrowserLauncher.skipReason(linux({ WSL_DISTRO_NAME: "Ubuntu" }))).toBeUndefined()
    expect(NodeBrowserLauncher.skipReason({ platform: "darwin", env: {} })).toBeUndefined()
    expect(NodeBrowserLauncher.skipReason({ platform: "win32", env: {} })).toBeUndefined()
  })
})

/** A launcher over a fake environment and a fake opener that records what it was asked. */
const fake = (
  env: NodeBrowserLauncher.LaunchEnvironment,
  openUrl: (url: string) => Promise<void> = () => Promise.resolve()
) => {
  const opened: Array<string> = []
  return Effect.map(
    NodeBrowserLauncher.make({
      environment: () => env,
      openUrl: (url) => {
        opened.push(url)
        return openUrl(url)
      }
    }),
    (launcher) => ({ launcher, opened })
  )
}

describe("NodeBrowserLauncher.make", () => {
  it.effect("opens through the opener when nothing says not to: a 0600 page in a 0700 folder, never the URL, removed with the scope", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { launcher, opened } = yield* fake(linux(desktop)).pipe(Scope.extend(scope))
      expect(yield* launcher.open(URL_)).toEqual({ _tag: "Opened" })
      expect(opened).toHaveLength(1)
      const page = opened[0]!
      expect(page).not.toContain("state=")
      expect(page.endsWith(".html")).toBe(true)
      expect(fs.statSync(page).mode & 0o777).toBe(0o600)
      expect(fs.statSync(path.dirname(page)).mode & 0o777).toBe(0o700)
      const html = fs.readFileSync(page, "utf8")
      expect(html).toContain(`content="0;url=${URL_.replace(/&/g, "&amp;")}"`)
      expect(html).toContain(`location.replace(${JSON.stringify(URL_)})`)
      yield* Scope.close(scope, Exit.void)
      expect(fs.existsSync(path.dirname(page))).toBe(false)
    }))

  it("the BROWSER command gets the page as its last argument", async () => {
    expect(NodeBrowserLauncher.commandWords(`firefox --new-window`)).toEqual(["firefox", "--new-window"])
    expect(NodeBrowserLauncher.commandWords(`"/opt/My Browser/run" -x 'a b'`)).toEqual(["/opt/My Browser/run", "-x", "a b"])
    expect(NodeBrowserLauncher.skipReason(linux({ BROWSER: "w3m" }))).toBeUndefined()
  })

  it.scoped("each skip reason is returned without calling the opener", () =>
    Effect.gen(function*() {
      const cases: Array<[NodeBrowserLauncher.LaunchEnvironment, string]> = [
        [linux({ ...desktop, CI: "true" }), "running under CI"],
        [linux({ ...desktop, SSH_CONNECTION: "1 2 3 4" }), "over SSH, the browser would open on the remote machine"],
        [linux({}), "no display"],
        [linux({ ...desktop, BROWSER: "none" }), "BROWSER=none"]
      ]
      for (const [env, reason] of cases) {
        const { launcher, opened } = yield* fake(env)
        expect(yield* launcher.open(URL_)).toEqual({ _tag: "Skipped", reason })
        expect(opened).toEqual([])
      }
    }))

  it.scoped("a failing opener is a Skipped with its reason", () =>
    Effect.gen(function*() {
      const { launcher } = yield* fake(linux(desktop), () => Promise.reject(new Error("spawn xdg-open ENOENT")))
      expect(yield* launcher.open(URL_)).toEqual({
        _tag: "Skipped",
        reason: "could not open a browser: spawn xdg-open ENOENT"
      })
    }))

  it.scoped("an opener that never starts is given up after the timeout", () =>
    Effect.gen(function*() {
      const { launcher } = yield* fake(linux(desktop), () => new Promise<void>(() => {}))
      const fiber = yield* Effect.fork(launcher.open(URL_))
      yield* TestClock.adjust("9 seconds")
      expect((yield* Fiber.poll(fiber))._tag).toBe("None")
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      expect(result._tag).toBe("Skipped")
    }))

  it.scoped("only http(s) URLs are handed to the opener", () =>
    Effect.gen(function*() {
      const { launcher, opened } = yield* fake(linux(desktop))
      expect((yield* launcher.open("file:///etc/passwd"))._tag).toBe("Skipped")
      expect((yield* launcher.open("not a url"))._tag).toBe("Skipped")
      expect(opened).toEqual([])
    }))

  it.scoped("layerWith provides the BrowserLauncher service", () =>
    Effect.gen(function*() {
      const launcher = yield* BrowserLauncher.BrowserLauncher
      expect(yield* launcher.open(URL_)).toEqual({ _tag: "Skipped", reason: "no display" })
    }).pipe(Effect.provide(NodeBrowserLauncher.layerWith({
      environment: () => linux({}),
      openUrl: () => Promise.reject(new Error("must not be called"))
    }))))
})
