/**
 * The in-process figures: `resolve` on the hot path (memory store, file store with a warm
 * cache), the naive read-and-parse-every-call approach, a refresh storm, and `JwtVerifier`.
 * Bundled by bench/run.mjs and run as its own process; prints one JSON object a line
 * (see bench/lib/report.mjs for the shape).
 *
 * Every ratio is measured in one process with the two sides alternating (ABBA rounds),
 * each side timed over a batch; the figure is the ratio of the medians.
 */
import { AuthConfig, CredentialResolver, JwtVerifier, TokenStore } from "@agent-auth/core"
import { NodeTokenStore } from "@agent-auth/node"
import { FakeAuthServer } from "@agent-auth/testing"
import { FetchHttpClient } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Deferred, Effect, FiberId, Layer, ManagedRuntime, Redacted } from "effect"
import * as jose from "jose"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { acmeFile, alternate, emit, emitRatio, HOUR, ISSUER, login, median, now, quick, repeat, services } from "./common.js"

// ---------------------------------------------------------------------------------------
// the file store

/** How many times the file store has parsed credentials.json (0 for the memory store). */
const parseCount = Effect.flatMap(
  TokenStore.TokenStore,
  (s) => "parses" in s ? (s as NodeTokenStore.FileTokenStore).parses : Effect.succeed(0)
)

const tempHome = () => fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-bench-"))

// ---------------------------------------------------------------------------------------
// resolve on the hot path

const hotPath = async () => {
  const rounds = quick ? 6 : 20
  const ops = quick ? 2_000 : 5_000
  // The built-in `openai` provider, as a runtime uses it: mode `auto`, so OPENAI_API_KEY
  // (unset here) is looked at before the ChatGPT login on every call.
  delete process.env["OPENAI_API_KEY"]
  const provider = "openai"
  const valid = login({ provider, accessToken: "at-bench", refreshToken: "rt-bench", expiresAt: Date.now() + 10 * HOUR })

  const memory = ManagedRuntime.make(
    services(
      Layer.mergeAll(AuthConfig.layerWith({ home: "/bench-home", file: acmeFile(ISSUER) }), TokenStore.layerMemory)
        .pipe(Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER })))
    )
  )
  const home = tempHome()
  const file = ManagedRuntime.make(
    services(
      Layer.mergeAll(
        NodeTokenStore.layerFile.pipe(Layer.provide(NodeFileSystem.layer)),
        FakeAuthServer.layerInMemory({ issuer: ISSUER })
      ).pipe(Layer.provideMerge(AuthConfig.layerWith({ home, file: acmeFile(ISSUER) })))
    )
  )
  try {
    for (const [store, runtime] of [["memory", memory], ["file", file]] as const) {
      const resolver = await runtime.runPromise(
        Effect.zipRight(Effect.flatMap(TokenStore.TokenStore, (s) => s.set(valid)), CredentialResolver.CredentialResolver)
      )
      const resolve = resolver.resolve(provider)
      const cached = await runtime.runPromise(resolve)
      if (cached._tag !== "Bearer") throw new Error(`expected the OAuth login, got ${cached._tag}`)
      const bare = Effect.succeed(cached)
      // Warm-up: the JIT, the store's cache.
      for (let i = 0; i < 3; i++) {
        await runtime.runPromise(repeat(resolve, ops))
        await runtime.runPromise(repeat(bare, ops))
      }
      // The file store's witness that warm reads parse nothing (the memory store has none).
      const parsesBefore = await runtime.runPromise(parseCount)
      const r = await alternate(rounds, ops, () => runtime.runPromise(repeat(resolve, ops)), () => runtime.runPromise(repeat(bare, ops)))
      const parsesDuring = (await runtime.runPromise(parseCount)) - parsesBefore
      emitRatio(`resolve(openai) (${store} store, valid token) / Effect.succeed(cached)`, "ns/op", r, { op: "<=", value: 3 }, "ours/base", {
        ops,
        ...(store === "file" ? { fileParsesDuringRun: parsesDuring } : {})
      })
      // The same through Effect.flatMap instead of `yield*` (resolve's answer is then one more
      // fiber step; under `yield*` the generator gets it directly).
      const chained = await alternate(
        rounds,
        ops,
        () => runtime.runPromise(repeat(Effect.flatMap(resolve, Effect.succeed), ops)),
        () => runtime.runPromise(repeat(Effect.flatMap(bare, Effect.succeed), ops))
      )
      emitRatio(
        `resolve(openai) (${store} store, valid token) / Effect.succeed(cached), both through Effect.flatMap`,
        "ns/op",
        chained,
        { op: "<=", value: 3 },
        "ours/base",
        { ops, informational: true }
      )
      // The same, each call its own runPromise (a runtime calling from outside Effect).
      const single = await alternate(
        rounds,
        ops,
        async () => {
          for (let i = 0; i < ops; i++) await runtime.runPromise(resolve)
        },
        async () => {
          for (let i = 0; i < ops; i++) await runtime.runPromise(bare)
        }
      )
      emitRatio(
        `resolve(openai) (${store} store, valid token) / Effect.succeed(cached), one runPromise per call`,
        "ns/op",
        single,
        { op: "<=", value: 3 },
        "ours/base",
        { ops, informational: true }
      )

      // The naive approach: read and parse credentials.json on every call (synchronous
      // reads, the fastest way to do it; no schema decoding, which would only slow it).
      const credentialsFile = path.join(home, "credentials.json")
      const naive = Effect.sync(() => {
        const doc = JSON.parse(fs.readFileSync(credentialsFile, "utf8")) as {
          credentials: Array<{ provider: string; tokens: { accessToken: string; expiresAt?: string } }>
        }
        const found = doc.credentials.find((c) => c.provider === provider)
        if (found === undefined || (found.tokens.expiresAt !== undefined && Date.parse(found.tokens.expiresAt) <= Date.now())) {
          throw new Error("naive: no valid token")
        }
        return found.tokens.accessToken
      })
      if (store === "memory") {
        // The naive side needs the file: the file runtime writes it (below, same credential).
        await file.runPromise(Effect.flatMap(TokenStore.TokenStore, (s) => s.set(valid)))
      }
      for (let i = 0; i < 3; i++) await runtime.runPromise(repeat(naive, ops / 10))
      // Per operation, each side over a batch of its own size (the naive side is slow: a
      // tenth as many calls), so a batch's fixed cost (one runPromise) is spread alike.
      const n = await alternate(
        rounds,
        [ops, ops / 10],
        () => runtime.runPromise(repeat(resolve, ops)),
        () => runtime.runPromise(repeat(naive, ops / 10))
      )
      emitRatio(
        `read+parse credentials.json per call / resolve(openai) (${store} store)`,
        "ns/op",
        n,
        { op: ">=", value: 100 },
        "base/ours",
        { ops, baselineOps: ops / 10 }
      )
    }
  } finally {
    await memory.dispose()
    await file.dispose()
    fs.rmSync(home, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// refresh storm

type Transport = "in-memory" | "loopback HTTP"

/** The storm over one transport: a server, a store, the services. */
type StormServices = CredentialResolver.CredentialResolver | TokenStore.TokenStore | FakeAuthServer.FakeAuthServer

const stormRuntime = (transport: Transport): ManagedRuntime.ManagedRuntime<StormServices, unknown> =>
  transport === "in-memory"
    ? ManagedRuntime.make(
      services(
        Layer.mergeAll(AuthConfig.layerWith({ home: "/bench-home", file: acmeFile(ISSUER) }), TokenStore.layerMemory)
          .pipe(Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER })))
      )
    )
    : ManagedRuntime.make(
      Layer.unwrapScoped(
        Effect.map(FakeAuthServer.make(), (server) =>
          services(
            Layer.mergeAll(
              AuthConfig.layerWith({ home: "/bench-home", file: acmeFile(server.issuer) }),
              TokenStore.layerMemory,
              FetchHttpClient.layer
            )
          ).pipe(Layer.provideMerge(Layer.succeed(FakeAuthServer.FakeAuthServer, server))))
      )
    )

/**
 * `latencyMillis`: the token endpoint answers that much later (a real provider's latency);
 * without it, the in-process server answers at once and the figure is all our own overhead.
 */
const storm = async (transport: Transport, latencyMillis?: number) => {
  const fibers = 1000
  const rounds = quick ? 4 : latencyMillis === undefined ? 15 : 7
  const runtime = stormRuntime(transport)
  const label = latencyMillis === undefined ? transport : `${transport}, token endpoint answering in ${latencyMillis} ms`
  try {
    /** An expired login whose refresh token the server honours, stored; then how many token requests so far. */
    const expire = Effect.gen(function*() {
      const server = yield* FakeAuthServer.FakeAuthServer
      const issued = yield* server.issueTokens()
      const store = yield* TokenStore.TokenStore
      yield* store.set(login({ provider: "acme", accessToken: issued.access_token, refreshToken: issued.refresh_token, expiresAt: Date.now() - 1000 }))
      if (latencyMillis !== undefined) {
        yield* server.inject(FakeAuthServer.Fault.delay(`${latencyMillis} millis`), { grant: "refresh_token" })
      }
      const c = yield* server.counts
      return c.refreshToken + c.authorizationCode + c.deviceCode + c.otherGrant
    })
    const tokenRequests = Effect.map(
      Effect.flatMap(FakeAuthServer.FakeAuthServer, (s) => s.counts),
      (c) => c.refreshToken + c.authorizationCode + c.deviceCode + c.otherGrant
    )
    const resolve = Effect.flatMap(CredentialResolver.CredentialResolver, (r) => r.resolve("acme"))
    const all = Effect.all(Array.from({ length: fibers }, () => resolve), { concurrency: "unbounded" })
    // The floor: the same 1000 fibers, the first resolving (and refreshing) and the others
    // awaiting it through a bare Deferred: what any single-flight costs in Effect fibers.
    const floor = Effect.suspend(() => {
      const done = Deferred.unsafeMake<unknown, unknown>(FiberId.none)
      let first = true
      const one = Effect.suspend(() => {
        if (!first) return Deferred.await(done)
        first = false
        return Effect.zipRight(Effect.intoDeferred(resolve, done), Deferred.await(done))
      })
      return Effect.all(Array.from({ length: fibers }, () => one), { concurrency: "unbounded" })
    })
    // Discovery happens once, before the first refresh: do it outside the timing.
    await runtime.runPromise(Effect.zipRight(expire, resolve))
    const singleCalls: Array<number> = []

    const calls: Array<number> = []
    const timed = (effect: Effect.Effect<unknown, unknown, any>, countInto?: Array<number>) => async () => {
      const before = await runtime.runPromise(expire)
      const t0 = now()
      await runtime.runPromise(effect)
      const elapsed = Number(now() - t0)
      if (countInto !== undefined) countInto.push((await runtime.runPromise(tokenRequests)) - before)
      return elapsed
    }
    const floorCalls: Array<number> = []
    const single = timed(resolve, singleCalls)
    const many = timed(all, calls)
    const bareFloor = timed(floor, floorCalls)
    for (let i = 0; i < 2; i++) {
      await single()
      await many()
      await bareFloor()
    }
    calls.length = 0
    singleCalls.length = 0
    floorCalls.length = 0
    const a: Array<number> = []
    const b: Array<number> = []
    const f: Array<number> = []
    // The three sides in rotating order, so none is always first after another.
    const sides = [() => many().then((t) => a.push(t)), () => single().then((t) => b.push(t)), () => bareFloor().then((t) => f.push(t))]
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < sides.length; i++) await sides[(r + i) % sides.length]!()
    }
    const maxCalls = Math.max(...calls)
    if (!singleCalls.every((c) => c === 1)) throw new Error(`a single resolve with refresh made ${singleCalls.join(", ")} token requests`)
    emit({
      name: `refresh storm (${label}): token-endpoint calls for ${fibers} concurrent resolves of an expired token`,
      unit: "calls",
      ours: maxCalls,
      baseline: 1,
      ratio: maxCalls,
      orientation: "ours/base",
      target: { op: "<=", value: 1 },
      met: calls.every((c) => c === 1),
      rounds,
      perRound: calls
    })
    emitRatio(
      `refresh storm (${label}): ${fibers} concurrent resolves / one resolve with refresh`,
      "ns (wall)",
      { ours: { median: median(a), samples: a }, base: { median: median(b), samples: b } },
      { op: "<=", value: 2 },
      "ours/base",
      {
        fibers,
        // What each caller beyond the first adds: the part of the storm the refresh does not explain.
        perExtraCallerNs: (median(a) - median(b)) / (fibers - 1),
        ...(latencyMillis === undefined ? {} : { latencyMillis, informational: true })
      }
    )
    if (!floorCalls.every((c) => c === 1)) throw new Error(`the floor made ${floorCalls.join(", ")} token requests`)
    emitRatio(
      `  the floor (${label}): ${fibers} fibers sharing one resolve through a bare Deferred / one resolve with refresh`,
      "ns (wall)",
      { ours: { median: median(f), samples: f }, base: { median: median(b), samples: b } },
      { op: "<=", value: 2 },
      "ours/base",
      { fibers, informational: true }
    )
    emitRatio(
      `  of which ours: ${fibers} concurrent resolves / the floor`,
      "ns (wall)",
      { ours: { median: median(a), samples: a }, base: { median: median(f), samples: f } },
      { op: "<=", value: 2 },
      "ours/base",
      { fibers, informational: true }
    )
  } finally {
    await runtime.dispose()
  }
}

// ---------------------------------------------------------------------------------------
// JwtVerifier

const jwt = async () => {
  const rounds = quick ? 6 : 20
  const ops = quick ? 200 : 500
  const program = Effect.gen(function*() {
    const server = yield* FakeAuthServer.FakeAuthServer
    const verifier = yield* JwtVerifier.JwtVerifier
    const issued = yield* server.issueTokens()
    if (issued.id_token === undefined) return yield* Effect.dieMessage("the fake issued no ID token")
    const token = Redacted.make(issued.id_token)
    const options: JwtVerifier.VerifyOptions = {
      issuer: server.issuer,
      jwksUri: server.endpoints.jwks,
      clientId: server.clientId,
      algorithms: ["RS256"]
    }
    // The same key, imported once, for bare jose.
    const jwks = yield* server.jwks
    const key = yield* Effect.promise(() => jose.importJWK(jwks.keys[0]!, "RS256"))
    const joseOptions: jose.JWTVerifyOptions = {
      algorithms: ["RS256"],
      issuer: server.issuer,
      audience: server.clientId,
      clockTolerance: JwtVerifier.clockToleranceSeconds,
      requiredClaims: ["iss", "sub", "aud", "exp", "iat"]
    }
    const ours = repeat(verifier.verify(token, options), ops)
    const bare = repeat(
      Effect.promise(() => jose.jwtVerify(issued.id_token!, key, { ...joseOptions, currentDate: new Date() })),
      ops
    )
    // Where a difference comes from: jose over a local JWKS (as JwtVerifier uses it), no Effect.
    const set = jose.createLocalJWKSet(jwks as jose.JSONWebKeySet)
    const viaSet = repeat(
      Effect.promise(() => jose.jwtVerify(issued.id_token!, set, { ...joseOptions, currentDate: new Date() })),
      ops
    )
    return { ours, bare, viaSet }
  })
  const runtime = ManagedRuntime.make(
    JwtVerifier.layer.pipe(Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER })))
  )
  try {
    const { bare, ours, viaSet } = await runtime.runPromise(program)
    for (let i = 0; i < 3; i++) {
      await runtime.runPromise(ours)
      await runtime.runPromise(bare)
    }
    const r = await alternate(rounds, ops, () => runtime.runPromise(ours), () => runtime.runPromise(bare))
    emitRatio("JwtVerifier.verify (cached JWKS) / jose.jwtVerify (same key)", "ns/op", r, { op: "<=", value: 1.2 }, "ours/base", {
      ops
    })
    for (let i = 0; i < 2; i++) await runtime.runPromise(viaSet)
    const keyLookup = await alternate(rounds, ops, () => runtime.runPromise(viaSet), () => runtime.runPromise(bare))
    emitRatio("  of which: jose.jwtVerify over createLocalJWKSet / jose.jwtVerify (same key)", "ns/op", keyLookup, { op: "<=", value: 1.2 }, "ours/base", {
      ops,
      informational: true
    })
  } finally {
    await runtime.dispose()
  }
}

// ---------------------------------------------------------------------------------------

const only = process.argv.slice(2)
const parts: Record<string, () => Promise<void>> = {
  resolve: hotPath,
  storm: async () => {
    await storm("in-memory")
    await storm("loopback HTTP")
    await storm("loopback HTTP", 200)
  },
  jwt
}
for (const [name, run] of Object.entries(parts)) {
  if (only.length === 0 || only.includes(name)) await run()
}
