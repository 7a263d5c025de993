/**
 * Hardening, MCP servers (@agent-auth/mcp): every discovery and sign-in rule the MCP
 * authorization spec asks of a client, attacked for real. In-process against the real
 * components of test/mcp.test.ts (oidc-provider, an MCP server built with the SDK, the Node
 * callback server, `fetch`), plus hostile loopback servers where the attacker's part needs one:
 * - protected-resource metadata (RFC 9728): for another resource, from another origin,
 *   naming a plain-http authorization server, larger than 1 MiB, behind a redirect;
 * - authorization-server metadata (RFC 8414): another issuer, no S256, a plain-http
 *   endpoint, larger than 1 MiB, behind a redirect;
 * - the token: never sent where the MCP endpoint redirects;
 * - the callback: an `iss` (RFC 9207) that is not the authorization server's.
 * Each case asserts where it matters: what the attacker's server received, what the
 * authorization server saw (registrations, code grants), and the refusal's words.
 */
import { type AuthError, BrowserLauncher } from "@agent-auth/core"
import { McpAuth, McpLogin } from "@agent-auth/mcp"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { afterAll, beforeAll, expect } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Browser } from "../support/browser.js"
import {
  type McpIssuer,
  type McpServerOptions,
  type McpTestServer,
  startMcpIssuer,
  startMcpServer,
  startRawMcpEndpoint,
  startStaticAs
} from "../support/mcpServers.js"
import { mcpLayer } from "../support/mcpServices.js"
import { huge, serve, type Served, thief } from "./support/hostile.js"
import { area } from "./support/table.js"

let issuer: McpIssuer
let stolen: Served

beforeAll(async () => {
  issuer = await startMcpIssuer()
  stolen = await thief()
})
afterAll(async () => {
  await issuer?.close()
  await stolen?.close()
})

type Services = Layer.Layer.Success<ReturnType<typeof mcpLayer>>

const run = <A, E>(effect: Effect.Effect<A, E, Services>, layer: Layer.Layer<Services, unknown> = mcpLayer()): Promise<A> =>
  Effect.runPromise(Effect.provide(effect, layer) as Effect.Effect<A, E>)

/** The login's failure (it must fail). */
const loginFails = (url: string, layer?: Layer.Layer<Services, unknown>): Promise<AuthError> =>
  run(Effect.flip(McpLogin.login({ url })), layer)

const withServer = async <A>(options: McpServerOptions, use: (s: McpTestServer) => Promise<A>): Promise<A> => {
  const s = await startMcpServer(options)
  try {
    return await use(s)
  } finally {
    await s.close()
  }
}

/** What the authorization server has seen so far, to show an attack reached nothing there. */
const atIssuer = () => ({ registrations: issuer.registrations(), seen: issuer.seen.length })

/** Authorization-server metadata a static server publishes at every well-known URL. */
const asMetadata = (origin: string) => ({
  issuer: origin,
  authorization_endpoint: `${origin}/auth`,
  token_endpoint: `${origin}/token`,
  registration_endpoint: `${origin}/register`,
  code_challenge_methods_supported: ["S256"]
})

/** A login to an MCP server whose authorization server publishes `doc`: refused with McpDiscoveryError matching `expected`. */
const refusedAs = async (doc: (origin: string) => Record<string, unknown>, expected: RegExp): Promise<string> => {
  const fake = await startStaticAs(doc)
  try {
    return await withServer({ issuer: fake.issuer }, async (s) => {
      const error = await loginFails(s.url)
      expect(error._tag).toBe("McpDiscoveryError")
      expect(error.message).toMatch(expected)
      return error.message
    })
  } finally {
    await fake.close()
  }
}

const mcp = area("MCP servers", import.meta.url)

// ---------------------------------------------------------------- protected-resource metadata

mcp.promise("protected-resource metadata whose resource names another server", "refused", async (t) => {
  const before = atIssuer()
  await withServer({ issuer: issuer.issuer, resource: () => "https://other-server.example/mcp" }, async (s) => {
    const error = await loginFails(s.url)
    expect(error._tag).toBe("McpDiscoveryError")
    expect(error.message).toContain(`describes "https://other-server.example/mcp", not this server`)
    expect(error.message).toContain("RFC 9728 §3.3")
  })
  // Its authorization server got nothing: no registration, no authorization request.
  expect(atIssuer()).toEqual(before)
  t.note("McpDiscoveryError (RFC 9728 §3.3); the AS saw no registration")
})

mcp.promise("a 401's resource_metadata on another origin, describing that origin's server", "refused", async (t) => {
  // The attacker's origin: metadata for itself, naming its own authorization server.
  const evilAs = await serve((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify(asMetadata(evilAs.origin)))
  })
  const evil = await serve((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ resource: `${evil.origin}/mcp`, authorization_servers: [evilAs.origin] }))
  })
  // The MCP endpoint's challenge points at the attacker's document.
  const pointing = await serve((req, res) => {
    if (req.url === "/mcp") {
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${evil.origin}/prm"` })
      return res.end()
    }
    res.writeHead(404)
    res.end()
  })
  try {
    const error = await loginFails(`${pointing.origin}/mcp`)
    expect(error._tag).toBe("McpDiscoveryError")
    expect(error.message).toContain(`describes "${evil.origin}/mcp", not this server`)
    expect(evil.received.map((r) => r.url)).toEqual(["/prm"])
    expect(evilAs.received).toEqual([])
    t.note("the spec binds the document by its resource, not its host: refused by that check; the attacker's AS got nothing")
  } finally {
    await Promise.all([evilAs.close(), evil.close(), pointing.close()])
  }
})

mcp.promise("protected-resource metadata naming a plain-http authorization server", "refused", async (t) => {
  await withServer({ issuer: issuer.issuer, authorizationServers: ["http://as.example.com"] }, async (s) => {
    const error = await loginFails(s.url)
    expect(error._tag).toBe("McpDiscoveryError")
    expect(error.message).toContain(`authorization_servers[0] of its protected-resource metadata "http://as.example.com" must use https`)
  })
  t.note("McpDiscoveryError naming authorization_servers[0]")
})

mcp.promise("protected-resource metadata larger than 1 MiB (chunked, no Content-Length)", "refused", async (t) => {
  const big = await startRawMcpEndpoint(issuer.issuer, (res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.write(`{"resource":"x","pad":"`)
    res.end(`${"a".repeat(2 * 1024 * 1024)}"}`)
  })
  try {
    const error = await loginFails(big.url)
    expect(error._tag).toBe("McpDiscoveryError")
    expect(error.message).toContain("larger than 1 MiB")
    t.note("McpDiscoveryError: larger than 1 MiB, read no further")
  } finally {
    await big.close()
  }
})

mcp.promise("protected-resource metadata behind a redirect", "refused", async (t) => {
  const moved = await startRawMcpEndpoint(issuer.issuer, (res, origin) => {
    res.writeHead(302, { location: `${origin}/elsewhere` })
    res.end()
  })
  try {
    const error = await loginFails(moved.url)
    expect(error._tag).toBe("McpDiscoveryError")
    expect(error.message).toContain("no protected-resource metadata at")
    expect(moved.hits.get("/meta")).toBe(1)
    expect(moved.hits.get("/elsewhere")).toBeUndefined()
    t.note("not followed: the redirect's target got no request")
  } finally {
    await moved.close()
  }
})

// ---------------------------------------------------------------- authorization-server metadata

mcp.promise("authorization-server metadata naming another issuer", "refused", async (t) => {
  await refusedAs((o) => ({ ...asMetadata(o), issuer: "https://elsewhere.example" }), /names the issuer "https:\/\/elsewhere\.example"/)
  t.note("McpDiscoveryError naming the issuer it named (RFC 8414 §3.3)")
})

mcp.promise("authorization-server metadata without code_challenge_methods_supported", "refused", async (t) => {
  await refusedAs((o) => {
    const { code_challenge_methods_supported: _, ...rest } = asMetadata(o)
    return rest
  }, /no code_challenge_methods_supported/)
  t.note("refused, not assumed: McpDiscoveryError naming the field")
})

mcp.promise("authorization-server metadata offering PKCE plain only", "refused", async (t) => {
  await refusedAs((o) => ({ ...asMetadata(o), code_challenge_methods_supported: ["plain"] }), /\(plain\) lacks S256/)
  t.note("McpDiscoveryError: lacks S256")
})

mcp.promise("authorization-server metadata naming a plain-http registration endpoint", "refused", async (t) => {
  await refusedAs(
    (o) => ({ ...asMetadata(o), registration_endpoint: "http://as.example.com/register" }),
    /registration_endpoint "http:\/\/as\.example\.com\/register" must use https/
  )
  t.note("McpDiscoveryError naming registration_endpoint (core's https rule)")
})

mcp.promise("authorization-server metadata larger than 1 MiB", "refused", async (t) => {
  const big = await huge(2 * 1024 * 1024)
  try {
    await withServer({ issuer: big.origin }, async (s) => {
      const error = await loginFails(s.url)
      expect(error._tag).toBe("McpDiscoveryError")
      expect(error.message).toContain("larger than 1 MiB")
    })
    t.note("McpDiscoveryError: larger than 1 MiB")
  } finally {
    await big.close()
  }
})

mcp.promise("authorization-server metadata behind a redirect", "refused", async (t) => {
  // The redirect's target publishes metadata that would pass every other check for the redirector's issuer.
  let redirector: Served | undefined
  const target = await startStaticAs(() => asMetadata(redirector!.origin))
  redirector = await serve((req, res) => {
    res.writeHead(302, { location: `${target.issuer}${req.url ?? "/"}` })
    res.end()
  })
  try {
    await withServer({ issuer: redirector.origin }, async (s) => {
      const error = await loginFails(s.url)
      expect(error._tag).toBe("McpDiscoveryError")
      expect(error.message).toContain("HTTP 302, a redirect, not followed")
    })
    expect(redirector.received.length).toBeGreaterThan(0)
    expect(target.hits()).toBe(0)
    t.note("not followed: McpDiscoveryError naming the 302; its target got no request")
  } finally {
    await Promise.all([redirector.close(), target.close()])
  }
})

// ---------------------------------------------------------------- the token

mcp.promise("the MCP endpoint redirects a signed request to another origin (McpAuth.fetch)", "refused", async (t) => {
  const redirect: { to?: string | undefined } = {}
  await withServer({ issuer: issuer.issuer, redirect }, (s) =>
    run(Effect.gen(function*() {
      yield* McpLogin.login({ url: s.url })
      const auth = yield* McpAuth.McpAuth
      const fetch = yield* auth.fetch(s.url)
      redirect.to = `${stolen.origin}/mcp`
      const before = stolen.received.length
      const answer = yield* Effect.promise(() =>
        fetch(s.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(McpLogin.initializeRequest) })
      )
      // The redirect is handed back, not followed; whatever the caller does next goes out unsigned.
      expect(answer.status).toBe(307)
      yield* Effect.promise(() => fetch(`${stolen.origin}/mcp`, { method: "POST", body: "{}" }))
      const received = stolen.received.slice(before)
      expect(received).toHaveLength(1)
      expect(received.every((r) => r.headers.authorization === undefined)).toBe(true)
      expect(s.authorizations.length).toBeGreaterThan(0)
    })))
  t.note("the 307 is returned unfollowed; the other origin received no Authorization header")
})

mcp.promise("the MCP endpoint redirects a signed request to another origin (McpAuth.layer over fetch)", "refused", async (t) => {
  const redirect: { to?: string | undefined } = {}
  await withServer({ issuer: issuer.issuer, redirect }, (s) =>
    run(Effect.gen(function*() {
      yield* McpLogin.login({ url: s.url })
      redirect.to = `${stolen.origin}/mcp`
      const before = stolen.received.length
      const signedBefore = s.authorizations.length
      // The ambient HttpClient (fetch, which follows redirects) with requests to the server signed.
      yield* Effect.gen(function*() {
        const client = yield* HttpClient.HttpClient
        yield* client.execute(HttpClientRequest.post(s.url).pipe(HttpClientRequest.bodyUnsafeJson(McpLogin.initializeRequest)))
      }).pipe(Effect.scoped, Effect.provide(McpAuth.layer(s.url)), Effect.ignore)
      expect(s.authorizations.length).toBeGreaterThan(signedBefore)
      const received = stolen.received.slice(before)
      expect(received.every((r) => r.headers.authorization === undefined)).toBe(true)
      t.note(received.length === 0 ? "not followed" : "followed without the Authorization header (fetch drops it across origins)")
    })))
})

// ---------------------------------------------------------------- the callback

mcp.promise("a callback whose iss (RFC 9207) is not the authorization server", "refused", async (t) => {
  // A browser that signs in, then delivers the callback with another issuer's `iss` (a mix-up).
  // What it saw, and any failure of its own, are asserted after the login (not swallowed).
  const browser: { iss?: string | null; failure?: unknown } = {}
  const mixUp = Layer.succeed(BrowserLauncher.BrowserLauncher, {
    open: (url) =>
      Effect.sync(() => {
        const redirectUri = new URL(url).searchParams.get("redirect_uri") ?? ""
        void (async () => {
          const visit = await new Browser().navigate(url, { fields: { login: "alice", password: "any" }, stopAt: (u) => u.startsWith(redirectUri) })
          const callback = new URL(visit.url)
          browser.iss = callback.searchParams.get("iss")
          callback.searchParams.set("iss", "https://attacker.example")
          await fetch(callback)
        })().catch((e: unknown) => void (browser.failure = e))
        return { _tag: "Opened" as const }
      })
  })
  const codeGrants = issuer.grants("authorization_code")
  await withServer({ issuer: issuer.issuer }, async (s) => {
    const error = await loginFails(s.url, Layer.merge(mcpLayer(), mixUp))
    expect(error._tag).toBe("AuthorizationDenied")
    expect(error.message).toContain("issuer_mismatch")
    expect(error.message).toContain("https://attacker.example")
    expect(error.message).toContain(`agent-auth mcp login ${s.url}`)
  })
  expect(browser.failure).toBeUndefined()
  expect(browser.iss).toBe(issuer.issuer)
  // The code was never exchanged.
  expect(issuer.grants("authorization_code")).toBe(codeGrants)
  t.note("AuthorizationDenied issuer_mismatch; the code never reached the token endpoint")
})
