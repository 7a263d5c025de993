/**
 * What the in-process benches share: timing two sides in alternating rounds, the JSON
 * lines run.mjs reads, and the fixtures (a provider `acme` on the fake server, a login).
 */
import { CredentialResolver, Domain, JwtVerifier, ProviderRegistry, Refresher } from "@agent-auth/core"
import type { AuthConfig as AuthConfigNs } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { DateTime, Effect, Layer, Redacted } from "effect"

export const quick = process.env.BENCH_QUICK === "1"

export const now = () => process.hrtime.bigint()
/** A young-generation collection (run.mjs starts this process with --expose-gc). */
export const collect = (): void => (globalThis as { gc?: (options: { type: "minor" }) => void }).gc?.({ type: "minor" })
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export interface Sample {
  readonly median: number
  readonly samples: ReadonlyArray<number>
}

/**
 * Time `ours` and `base` (each: run one batch, resolve when done) in alternating rounds,
 * A B B A, so drift and other processes' load fall on both sides alike. Values are
 * nanoseconds per operation.
 */
export const alternate = async (
  rounds: number,
  /** Operations per batch: one number for both sides, or `[ours, base]`. */
  ops: number | readonly [number, number],
  ours: () => Promise<unknown>,
  base: () => Promise<unknown>
): Promise<{ ours: Sample; base: Sample }> => {
  const [opsA, opsB] = typeof ops === "number" ? [ops, ops] : ops
  const a: Array<number> = []
  const b: Array<number> = []
  const time = async (f: () => Promise<unknown>, into: Array<number>, n: number) => {
    // Each batch starts from a collected young generation: one side's garbage is not
    // collected on the other's time.
    collect()
    const t0 = now()
    await f()
    into.push(Number(now() - t0) / n)
  }
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      await time(ours, a, opsA)
      await time(base, b, opsB)
    } else {
      await time(base, b, opsB)
      await time(ours, a, opsA)
    }
  }
  return { ours: { median: median(a), samples: a }, base: { median: median(b), samples: b } }
}

/** One result line for run.mjs. */
export const emit = (figure: Record<string, unknown>) => process.stdout.write(JSON.stringify(figure) + "\n")

export const emitRatio = (
  name: string,
  unit: string,
  r: { ours: Sample; base: Sample },
  target: { readonly op: "<=" | ">="; readonly value: number },
  /** `ours / base` (lower is better) or `base / ours` ("x times faster"). */
  orientation: "ours/base" | "base/ours",
  extra: Record<string, unknown> = {}
) => {
  const ratio = orientation === "ours/base" ? r.ours.median / r.base.median : r.base.median / r.ours.median
  emit({
    name,
    unit,
    ours: r.ours.median,
    baseline: r.base.median,
    ratio,
    orientation,
    target,
    met: target.op === "<=" ? ratio <= target.value : ratio >= target.value,
    rounds: r.ours.samples.length,
    ...extra
  })
}

/** `n` runs of `effect` one after another in one fiber: how a runtime calls `resolve` before each model call. */
export const repeat = <A, E, R>(effect: Effect.Effect<A, E, R>, n: number): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < n; i++) yield* effect
  }).pipe(
    // No yield to the event loop inside a batch, on either side: a side that takes more
    // fiber steps would otherwise also pay for timers and I/O that happen to be due.
    Effect.withMaxOpsBeforeYield(Number.MAX_SAFE_INTEGER)
  )

// ---------------------------------------------------------------------------------------
// fixtures

export const ISSUER = "http://127.0.0.1:9"
export const HOUR = 3_600_000

export const acmeFile = (issuer: string): AuthConfigNs.ConfigFile => ({
  providers: { acme: { kind: "oidc", issuer, clientId: FakeAuthServer.defaultClientId } }
})

export const login = (options: { provider: string; accessToken: string; refreshToken: string; expiresAt: number }) =>
  Domain.OAuthCredential.make({
    provider: options.provider,
    account: "ada@example.test",
    tokens: Domain.TokenSet.make({
      accessToken: Redacted.make(options.accessToken),
      refreshToken: Redacted.make(options.refreshToken),
      expiresAt: DateTime.unsafeMake(options.expiresAt),
      scopes: ["openid", "offline_access"],
      tokenType: "Bearer"
    }),
    claims: Domain.AccountClaims.make({ email: "ada@example.test" }),
    obtainedAt: DateTime.unsafeMake(Date.now() - HOUR)
  })

/** The core services a runtime uses, over a given HTTP client, store and settings. */
export const services = <ROut, E, R>(
  base: Layer.Layer<ROut, E, R>
) => {
  const stage1 = Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
  const stage2 = Refresher.layer.pipe(Layer.provideMerge(stage1))
  return CredentialResolver.layer.pipe(Layer.provideMerge(stage2))
}

