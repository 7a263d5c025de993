/**
 * The fake server's state as JSON, so a server can outlive its process: the CLI's `demo`
 * provider starts one per command and must still know the refresh token the previous
 * command stored. A snapshot holds the signing keys (private JWKs), grants, access and
 * refresh tokens, codes, device logins, pending consents and the current user; never
 * faults or counts, which belong to one test run. One Schema both writes and checks it.
 */
import { Effect, Either, HashMap, Option, Schema } from "effect"
import { fromPrivateJwk, type SigningKey } from "./fakeAuthKeys.js"
import * as S from "./fakeAuthState.js"

/** A field whose value may be `undefined` in the state; absent in the JSON. */
const orUndefined = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.optionalToRequired(schema, Schema.UndefinedOr(Schema.typeSchema(schema)), {
    decode: Option.getOrUndefined,
    encode: Option.fromNullable
  })

const Time = Schema.Finite

const User = Schema.Struct({
  sub: Schema.String,
  email: Schema.String,
  name: Schema.String,
  openai: Schema.Struct({
    chatgpt_account_id: Schema.String,
    chatgpt_plan_type: Schema.String,
    chatgpt_user_id: Schema.String,
    organization_id: Schema.String,
    project_id: Schema.String
  })
})

const Grant = Schema.Struct({
  id: Schema.String,
  clientId: Schema.String,
  user: User,
  scope: Schema.String,
  audience: orUndefined(Schema.String),
  authTime: Time,
  revoked: Schema.Boolean
})

const Access = Schema.Struct({
  grantId: Schema.String,
  clientId: Schema.String,
  scope: Schema.String,
  iat: Time,
  exp: Time,
  revoked: Schema.Boolean
})

const Refresh = Schema.Struct({
  grantId: Schema.String,
  clientId: Schema.String,
  exp: Time,
  rotated: Schema.Boolean
})

const Code = Schema.Struct({
  clientId: Schema.String,
  redirectUri: Schema.String,
  challenge: Schema.String,
  nonce: orUndefined(Schema.String),
  scope: Schema.String,
  audience: orUndefined(Schema.String),
  user: User,
  exp: Time,
  used: Schema.Boolean,
  grantId: orUndefined(Schema.String)
})

const Device = Schema.Struct({
  deviceCode: Schema.String,
  userCode: Schema.String,
  clientId: Schema.String,
  scope: Schema.String,
  audience: orUndefined(Schema.String),
  exp: Time,
  interval: Time,
  status: Schema.Literal("pending", "approved", "denied"),
  user: orUndefined(User),
  lastPoll: orUndefined(Time),
  consumed: Schema.Boolean
})

/** An RSA private key; `kid` is checked against its thumbprint when it is imported. */
const PrivateJwk = Schema.Struct({
  kty: Schema.Literal("RSA"),
  kid: Schema.String,
  n: Schema.String,
  e: Schema.String,
  d: Schema.String,
  p: Schema.String,
  q: Schema.String,
  dp: Schema.String,
  dq: Schema.String,
  qi: Schema.String
})

const byKey = <V extends Schema.Schema.Any>(value: V) => Schema.HashMap({ key: Schema.String, value })

export const FORMAT = "agent-auth-fake-auth-server/1"

export const Snapshot = Schema.Struct({
  format: Schema.Literal(FORMAT),
  issuer: Schema.String,
  flavor: Schema.Literal("oidc", "openai"),
  /** Oldest first; the last one signs. */
  keys: Schema.Array(PrivateJwk).pipe(Schema.minItems(1)),
  user: User,
  grants: byKey(Grant),
  access: byKey(Access),
  refresh: byKey(Refresh),
  codes: byKey(Code),
  devices: byKey(Device),
  pendingConsents: byKey(Schema.Record({ key: Schema.String, value: Schema.String }))
})

/** The JSON-serialisable snapshot of a server's keys and state. */
export const encode = (
  issuer: string,
  flavor: S.Flavor,
  keys: ReadonlyArray<SigningKey>,
  s: S.State
): Effect.Effect<unknown> =>
  Schema.encode(Snapshot)({
    format: FORMAT,
    issuer,
    flavor,
    keys: keys.map((k) => k.privateJwk),
    user: s.user,
    grants: s.grants,
    access: s.access,
    refresh: s.refresh,
    codes: s.codes,
    devices: s.devices,
    pendingConsents: s.pendingConsents
  }).pipe(Effect.orDie)

/** What a valid snapshot gives back: the keys and the persistent part of the state. */
export interface Restored {
  readonly keys: ReadonlyArray<SigningKey>
  readonly user: S.FakeUser
  readonly records: Pick<S.State, "grants" | "access" | "refresh" | "codes" | "devices" | "userCodes" | "pendingConsents">
}

/**
 * Checks a snapshot and imports its keys. Fails (with the reason) when it does not
 * decode, was taken from another issuer or flavor (its tokens name that issuer), or a
 * key does not import.
 */
export const decode = (
  input: unknown,
  expected: { readonly issuer: string; readonly flavor: S.Flavor }
): Effect.Effect<Restored, string> =>
  Effect.gen(function*() {
    const decoded = Schema.decodeUnknownEither(Snapshot)(input)
    if (Either.isLeft(decoded)) return yield* Effect.fail(`not a snapshot: ${decoded.left.message}`)
    const snap = decoded.right
    if (snap.issuer !== expected.issuer) {
      return yield* Effect.fail(`the snapshot is of the issuer ${snap.issuer}, not ${expected.issuer}`)
    }
    if (snap.flavor !== expected.flavor) {
      return yield* Effect.fail(`the snapshot is of the ${snap.flavor} flavor, not ${expected.flavor}`)
    }
    const keys = yield* Effect.forEach(snap.keys, fromPrivateJwk).pipe(
      Effect.mapError((e) => `a signing key does not import: ${e.message}`)
    )
    // user code → device code is derived, not stored: one source of truth.
    const userCodes = HashMap.fromIterable(
      Array.from(HashMap.values(snap.devices), (d) => [S.normalizeUserCode(d.userCode), d.deviceCode] as const)
    )
    return {
      keys,
      user: snap.user,
      records: {
        grants: snap.grants,
        access: snap.access,
        refresh: snap.refresh,
        codes: snap.codes,
        devices: snap.devices,
        userCodes,
        pendingConsents: snap.pendingConsents
      }
    }
  })
