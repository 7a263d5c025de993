/**
 * The hosted example's pages in a real browser: Debian's headless Chromium driven by
 * playwright-core (never a browser playwright downloads), the example on its default
 * SQLite store, signing in through panva's oidc-provider's own login and consent pages.
 * A screenshot of the signed-in page is kept in test-artifacts/ (gitignored).
 *
 * Needs AGENT_AUTH_TEST_CHROMIUM (scripts/with-chromium.sh, which `pnpm test` runs, installs
 * Chromium when absent); without it the test fails, never skips.
 */
import { chromium, type Browser, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { buildHosted, homeWith, newKey, type Replica, startHosted } from "./support/hosted.js"
import { CLIENT_ID, type OidcServer, startOidcProvider } from "./support/oidcProvider.js"

const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url))
export const screenshotPath = path.join(artifacts, "hosted-signed-in.png")

let oidc: OidcServer
let service: Replica
let browser: Browser

const chromiumPath = (): string => {
  const p = process.env.AGENT_AUTH_TEST_CHROMIUM
  if (p === undefined || p === "" || !fs.existsSync(p)) {
    throw new Error("AGENT_AUTH_TEST_CHROMIUM is not set or missing: run through scripts/with-chromium.sh (pnpm test does)")
  }
  return p
}

beforeAll(async () => {
  const executablePath = chromiumPath()
  const bundle = buildHosted()
  oidc = await startOidcProvider()
  // No AGENT_AUTH_DATABASE_URL: the example's default, SQLite in its home.
  service = await startHosted(
    bundle,
    homeWith({ issuer: oidc.issuer, clientId: CLIENT_ID, displayName: "Acme", scopes: ["openid", "email", "offline_access"] }),
    { AGENT_AUTH_ENCRYPTION_KEY: newKey() }
  )
  // As root, Chromium's sandbox cannot start; the pages are our own and the provider's, on loopback.
  browser = await chromium.launch({ executablePath, headless: true, args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await service?.stop()
  await oidc?.close()
  if (service !== undefined) fs.rmSync(service.home, { recursive: true, force: true })
})

/** oidc-provider's development pages: the login form, then the consent form. */
const signInAtProvider = async (page: Page, login: string) => {
  await page.waitForURL((url) => url.origin === oidc.issuer)
  await page.fill("input[name=login]", login)
  await page.fill("input[name=password]", "any-password")
  await page.click("button[type=submit]")
  await page.waitForLoadState()
  // Consent, when the provider asks for it (the first time for this client and user).
  if (new URL(page.url()).origin === oidc.issuer) await page.click("button[type=submit]")
}

describe("the hosted example in Chromium", () => {
  it("a person signs in to the example, then to a provider through its pages, and sees it listed", async () => {
    expect(service.output()).toContain(`storing in sqlite ${service.home}/credentials.db`)
    const grants = oidc.grants("authorization_code")
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(service.url)
    await page.fill("#user", "alice")
    await page.click("button[type=submit]")
    await expect.poll(() => page.textContent("#principal")).toBe("alice")
    expect(await page.textContent("#none")).toContain("No provider yet")

    await page.click("text=Sign in to Acme")
    await signInAtProvider(page, "alice-at-idp")
    await page.waitForURL(`${service.url}/`)
    const table = await page.textContent("#logins")
    expect(table).toContain("acme")
    expect(table).toContain("alice-at-idp@example.test")
    expect(oidc.grants("authorization_code")).toBe(grants + 1)

    fs.mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: screenshotPath, fullPage: true })
    const png = fs.readFileSync(screenshotPath)
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG")
    expect(png.length).toBeGreaterThan(5_000)

    // Another person in another browser sees none of it.
    const other = await (await browser.newContext()).newPage()
    await other.goto(service.url)
    await other.fill("#user", "bob")
    await other.click("button[type=submit]")
    await expect.poll(() => other.textContent("#principal")).toBe("bob")
    expect(await other.textContent("body")).not.toContain("alice-at-idp")

    // Signing out of the provider removes the row.
    await page.click("#logins button[type=submit]")
    await page.waitForURL(`${service.url}/`)
    expect(await page.textContent("#none")).toContain("No provider yet")
    await context.close()
  })
})
