/**
 * MCP figures (bundled by bench/run.mjs, run as its own process; one JSON line a figure):
 *
 * - `mcp discovery per server per process`: metadata GETs (protected-resource and
 *   authorization-server) while one process prepares a login twice and then makes 20 requests,
 *   each through a new `McpAuth.fetch(url)`, each answered 401 once and so refreshed (every
 *   refresh asks the registry for the token endpoint). Target: 1 of each.
 * - `McpAuth.fetch request / fetch with a fixed header`: a POST to a loopback MCP endpoint
 *   through `McpAuth.fetch` (valid token in a memory store) against the same POST through
 *   `globalThis.fetch` with a fixed `Authorization` header. ABBA rounds, each side a batch of
 *   sequential requests; the ratio of the medians. Target ≤ 1.1×.
 */
import { FetchHttpClient } from "@effect/platform"
import { AuthConfig, Domain, ProviderRegistry, Refresher, TokenStore } from "@agent-auth/core"
import { McpAuth, McpLogin, McpServers } from "@agent-auth/mcp"
import { DateTime, Effect, Layer, Redacted } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

const quick = process.env.BENCH_QUICK === "1"
const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const listen = async (handler: http.RequestListener) => {
  const server = http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

const counts = { prm: 0, asMetadata: 0, token: 0 }
let issued = 0
const as = await listen((req, res) => {
  res.setHeader("content-type", "application/json")
  if (req.method === "GET" && req.url === "/.well-known/oauth-authorization-server") {
    counts.asMetadata++
    res.end(JSON.stringify({
      issuer: as.origin,
      authorization_endpoint: `${as.origin}/auth`,
      token_endpoint: `${as.origin}/token`,
      registration_endpoint: `${as.origin}/register`,
      code_challenge_methods_supported: ["S256"]
    }))
  } else if (req.method === "POST" && req.url === "/register") {
    res.statusCode = 201
    res.end(JSON.stringify({ client_id: "bench-client", token_endpoint_auth_method: "none" }))
  } else if (req.method === "POST" && req.url === "/token") {
    counts.token++
    req.resume()
    req.on("end", () => res.end(JSON.stringify({ access_token: `t-${++issued}`, token_type: "Bearer", expires_in: 3600, refresh_token: `r-${issued}` })))
  } else {
    res.statusCode = 404
    res.end("{}")
  }
})
const mcp = await listen((req, res) => {
  if (req.method === "GET" && req.url === "/.well-known/oauth-protected-resource/mcp") {
    counts.prm++
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ resource: `${mcp.origin}/mcp`, authorization_servers: [as.origin] }))
    return
  }
  req.resume()
  req.on("end", () => {
    const auth = req.headers.authorization
    if (auth === undefined || auth.startsWith("Bearer expired")) {
      res.statusCode = 401
      res.setHeader("www-authenticate", `Bearer resource_metadata="${mcp.origin}/.well-known/oauth-protected-resource/mcp"`)
      res.end()
      return
    }
    res.setHeader("content-type", "application/json")
    res.end(`{"jsonrpc":"2.0","id":1,"result":{}}`)
  })
})
const url = `${mcp.origin}/mcp`

const layer = (() => {
  const base = Layer.mergeAll(AuthConfig.layerWith({ home: "/bench-home" }), TokenStore.layerMemory, FetchHttpClient.layer)
  const servers = McpServers.layerMemory().pipe(Layer.provideMerge(base))
  const registry = ProviderRegistry.layer.pipe(Layer.provideMerge(servers))
  return McpAuth.layerService.pipe(Layer.provideMerge(Refresher.layer.pipe(Layer.provideMerge(registry))))
})()

const body = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
const post = (f: typeof globalThis.fetch, headers: Record<string, string> = {}) =>
  f(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body }).then((r) => r.text())

const program = Effect.gen(function*() {
  // Discovery: a login prepared twice (the second reuses the registry's discovery), then 20 refreshes.
  const { name } = yield* McpLogin.prepare({ url })
  yield* McpLogin.prepare({ url })
  const store = yield* TokenStore.TokenStore
  const now = yield* DateTime.now
  const login = (token: string) =>
    Domain.OAuthCredential.make({
      provider: name,
      account: "default",
      tokens: Domain.TokenSet.make({
        accessToken: Redacted.make(token),
        refreshToken: Redacted.make("r-0"),
        expiresAt: DateTime.add(now, { hours: 1 }),
        scopes: [],
        tokenType: "Bearer"
      }),
      claims: Domain.AccountClaims.make({}),
      obtainedAt: now
    })
  const auth = yield* McpAuth.McpAuth
  const refreshes = 20
  for (let i = 0; i < refreshes; i++) {
    yield* store.set(login(`expired-${i}`))
    // A new fetch each time: one fetch reuses the login it last used for a second (its hot path).
    const fetch = yield* auth.fetch(url)
    yield* Effect.promise(() => post(fetch))
  }
  console.log(JSON.stringify({
    name: "mcp discovery per server per process (20 refreshes, 2 login preparations)",
    unit: "calls",
    ours: counts.asMetadata,
    baseline: 1,
    ratio: counts.asMetadata,
    orientation: "ours/base",
    target: { op: "<=", value: 1 },
    met: counts.asMetadata === 1 && counts.prm <= 2 && counts.token === refreshes,
    detail: { ...counts, note: "prm: one GET per login preparation (2), none per request" }
  }))

  // The request figure: a valid token, no refresh.
  yield* store.set(login("valid-token"))
  const fetch = yield* auth.fetch(url)
  const fixed = { authorization: "Bearer valid-token" }
  const batch = quick ? 50 : 200
  const rounds = quick ? 6 : 20
  const time = async (side: () => Promise<string>) => {
    const start = performance.now()
    for (let i = 0; i < batch; i++) await side()
    return ((performance.now() - start) * 1e6) / batch
  }
  const ours: Array<number> = []
  const base: Array<number> = []
  const oursSide = () => post(fetch)
  const baseSide = () => post(globalThis.fetch, fixed)
  yield* Effect.promise(async () => {
    await time(oursSide) // warm-up, both sides
    await time(baseSide)
    for (let r = 0; r < rounds; r++) {
      // A B B A
      ours.push(await time(oursSide))
      base.push(await time(baseSide))
      base.push(await time(baseSide))
      ours.push(await time(oursSide))
    }
  })
  const ratio = median(ours) / median(base)
  console.log(JSON.stringify({
    name: "McpAuth.fetch request / fetch with a fixed header (loopback POST)",
    unit: "ns",
    ours: median(ours),
    baseline: median(base),
    ratio,
    orientation: "ours/base",
    target: { op: "<=", value: 1.1 },
    met: ratio <= 1.1
  }))

  // For reference: what McpAuth.fetch itself costs a request, with a fetch that answers at once (no network).
  const stub: typeof globalThis.fetch = () => Promise.resolve(new Response("{}"))
  const stubbed = yield* auth.fetch(url, { fetch: stub })
  const n = quick ? 2000 : 20000
  const per = async (f: () => Promise<unknown>) => {
    const start = performance.now()
    for (let i = 0; i < n; i++) await f()
    return ((performance.now() - start) * 1e6) / n
  }
  const overhead = yield* Effect.promise(async () => {
    const a: Array<number> = []
    const b: Array<number> = []
    for (let r = 0; r < 5; r++) {
      a.push(await per(() => stubbed(url, { method: "POST", headers: { "content-type": "application/json" }, body })))
      b.push(await per(() => stub(url, { method: "POST", headers: { "content-type": "application/json", ...fixed }, body })))
    }
    return { ours: median(a), base: median(b) }
  })
  console.log(JSON.stringify({
    name: "McpAuth.fetch over a fetch that answers at once / that fetch with a fixed header (its own cost)",
    unit: "ns",
    ours: overhead.ours,
    baseline: overhead.base,
    ratio: overhead.ours / overhead.base,
    orientation: "ours/base"
  }))
})

await Effect.runPromise(Effect.provide(program, layer))
as.server.close()
mcp.server.close()
process.exit(0)
