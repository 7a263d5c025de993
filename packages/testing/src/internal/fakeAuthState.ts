/**
 * The fake authorization server's state and its transitions. Every transition is a pure
 * function `(state, now, …) => [result, state]` applied with `Ref.modify`, so a decision
 * (is this refresh token still current? is this code unused?) and its effect (rotate,
 * consume, revoke) happen atomically however many requests arrive at once. Random values
 * and signatures are made outside the transition: randomness before, signing after.
 */
import { HashMap, Option } from "effect"

export type Flavor = "oidc" | "openai"

export type GrantType = "authorization_code" | "refresh_token" | "device_code"

/** Claims of the signed-in person; `openai` fills the `https://api.openai.com/auth` claim. */
export interface FakeUser {
  readonly sub: string
  readonly email: string
  readonly name: string
  readonly openai: {
    readonly chatgpt_account_id: string
    readonly chatgpt_plan_type: string
    readonly chatgpt_user_id: string
    readonly organization_id: string
    readonly project_id: string
  }
}

export interface FakeClient {
  readonly clientId: string
  /** Present for a confidential client (client_secret_post); absent for a public one (auth method none). */
  readonly clientSecret?: string
  /** Exact redirect URIs, besides the loopback ones. */
  readonly redirectUris?: ReadonlyArray<string>
  /** RFC 8252 §7.3: any `http://127.0.0.1|localhost|[::1]:<any port>/…`. Default true. */
  readonly allowLoopbackRedirects?: boolean
}

export interface Grant {
  readonly id: string
  readonly clientId: string
  readonly user: FakeUser
  readonly scope: string
  /** What the client asked the access token to be for (`audience=`, as Auth0 takes it). */
  readonly audience: string | undefined
  readonly authTime: number
  readonly revoked: boolean
}

export interface AccessRecord {
  readonly grantId: string
  readonly clientId: string
  readonly scope: string
  readonly iat: number
  readonly exp: number
  readonly revoked: boolean
}

export interface RefreshRecord {
  readonly grantId: string
  readonly clientId: string
  readonly exp: number
  /** Already exchanged for a newer one: a second use is a replay. */
  readonly rotated: boolean
}

export interface CodeRecord {
  readonly clientId: string
  readonly redirectUri: string
  readonly challenge: string
  readonly nonce: string | undefined
  readonly scope: string
  readonly audience: string | undefined
  readonly user: FakeUser
  readonly exp: number
  readonly used: boolean
  /** The grant this code produced, revoked if the code is presented again (RFC 6749 §4.1.2). */
  readonly grantId: string | undefined
}

export interface DeviceRecord {
  readonly deviceCode: string
  readonly userCode: string
  readonly clientId: string
  readonly scope: string
  readonly audience: string | undefined
  readonly exp: number
  /** Seconds; grows by 5 at each `slow_down` (RFC 8628 §3.5). */
  readonly interval: number
  readonly status: "pending" | "approved" | "denied"
  readonly user: FakeUser | undefined
  readonly lastPoll: number | undefined
  readonly consumed: boolean
}

/** What a fault does to a matching request. */
export type Fault =
  | { readonly _tag: "Status"; readonly status: number }
  | { readonly _tag: "RateLimited"; readonly retryAfter: number }
  | { readonly _tag: "Delay"; readonly millis: number }
  | { readonly _tag: "MalformedJson" }
  | { readonly _tag: "Html"; readonly status: number }
  | { readonly _tag: "MissingAccessToken" }
  | { readonly _tag: "InvalidGrant" }
  | { readonly _tag: "ConnectionReset" }

export type FaultEndpoint = "token" | "revocation" | "device_authorization" | "jwks" | "discovery" | "introspection"

export interface FaultEntry {
  readonly fault: Fault
  readonly remaining: number
  readonly grant: GrantType | undefined
  readonly endpoint: FaultEndpoint
  readonly afterProcessing: boolean
}

export interface Counts {
  /** Token requests with `grant_type=authorization_code`. */
  readonly authorizationCode: number
  readonly refreshToken: number
  /** RFC 8628 token polls, and OpenAI's `deviceauth/token` polls. */
  readonly deviceCode: number
  /** RFC 7523 JWT bearer grants (a service account's signed assertion). */
  readonly jwtBearer: number
  /** Token requests with any other (or no) grant type. */
  readonly otherGrant: number
  readonly revocation: number
  readonly jwks: number
  readonly discovery: number
  readonly authorize: number
  readonly deviceAuthorization: number
  readonly introspection: number
  readonly userinfo: number
}

export const emptyCounts: Counts = {
  authorizationCode: 0,
  refreshToken: 0,
  deviceCode: 0,
  jwtBearer: 0,
  otherGrant: 0,
  revocation: 0,
  jwks: 0,
  discovery: 0,
  authorize: 0,
  deviceAuthorization: 0,
  introspection: 0,
  userinfo: 0
}

export interface AuthorizeError {
  readonly error: string
  readonly description?: string
}

export interface State {
  readonly codes: HashMap.HashMap<string, CodeRecord>
  readonly grants: HashMap.HashMap<string, Grant>
  /** Keyed by the opaque token, or by the `jti` of a JWT access token. */
  readonly access: HashMap.HashMap<string, AccessRecord>
  readonly refresh: HashMap.HashMap<string, RefreshRecord>
  readonly devices: HashMap.HashMap<string, DeviceRecord>
  /** user code → device code */
  readonly userCodes: HashMap.HashMap<string, string>
  /** Consent pages waiting for a decision (autoApprove false): request id → the authorize URL's parameters. */
  readonly pendingConsents: HashMap.HashMap<string, Readonly<Record<string, string>>>
  readonly faults: ReadonlyArray<FaultEntry>
  readonly counts: Counts
  readonly user: FakeUser
  readonly authorizeError: AuthorizeError | undefined
}

export const initialState = (user: FakeUser, authorizeError: AuthorizeError | undefined): State => ({
  codes: HashMap.empty(),
  grants: HashMap.empty(),
  access: HashMap.empty(),
  refresh: HashMap.empty(),
  devices: HashMap.empty(),
  userCodes: HashMap.empty(),
  pendingConsents: HashMap.empty(),
  faults: [],
  counts: emptyCounts,
  user,
  authorizeError
})

/** An OAuth error answer; `openaiCode` is what OpenAI's refresh endpoint names the same failure. */
export interface OAuthFailure {
  readonly _tag: "OAuthFailure"
  readonly status: number
  readonly error: string
  readonly description: string
  readonly openaiCode?: string
}

export const failure = (error: string, description: string, status = 400, openaiCode?: string): OAuthFailure => ({
  _tag: "OAuthFailure",
  status,
  error,
  description,
  ...(openaiCode === undefined ? {} : { openaiCode })
})

/** Tokens decided by a transition; the caller turns them into strings (signing JWTs) afterwards. */
export interface Issued {
  readonly _tag: "Issued"
  readonly grant: Grant
  readonly accessId: string
  readonly refreshToken: string
  readonly iat: number
  readonly accessExp: number
  readonly nonce: string | undefined
}

/** Fresh random identifiers a transition may need, drawn before it runs. */
export interface Fresh {
  readonly grantId: string
  readonly accessId: string
  readonly refreshToken: string
}

export interface Lifetimes {
  readonly accessTokenMillis: number
  readonly refreshTokenMillis: number
}

export const bump = (s: State, key: keyof Counts): State => ({ ...s, counts: { ...s.counts, [key]: s.counts[key] + 1 } })

/** The first queued fault matching this request, consumed. */
export const takeFault = (
  s: State,
  endpoint: FaultEndpoint,
  grant: string | undefined
): [FaultEntry | undefined, State] => {
  const i = s.faults.findIndex((f) => f.endpoint === endpoint && (f.grant === undefined || f.grant === grant))
  const entry = s.faults[i]
  if (entry === undefined) return [undefined, s]
  const faults = entry.remaining > 1
    ? s.faults.map((f, j) => (j === i ? { ...f, remaining: f.remaining - 1 } : f))
    : s.faults.filter((_, j) => j !== i)
  return [entry, { ...s, faults }]
}

const issue = (
  s: State,
  grant: Grant,
  fresh: Fresh,
  now: number,
  life: Lifetimes,
  nonce: string | undefined
): [Issued, State] => {
  const accessExp = now + life.accessTokenMillis
  return [
    { _tag: "Issued", grant, accessId: fresh.accessId, refreshToken: fresh.refreshToken, iat: now, accessExp, nonce },
    {
      ...s,
      grants: HashMap.set(s.grants, grant.id, grant),
      access: HashMap.set(s.access, fresh.accessId, {
        grantId: grant.id,
        clientId: grant.clientId,
        scope: grant.scope,
        iat: now,
        exp: accessExp,
        revoked: false
      }),
      refresh: HashMap.set(s.refresh, fresh.refreshToken, {
        grantId: grant.id,
        clientId: grant.clientId,
        exp: now + life.refreshTokenMillis,
        rotated: false
      })
    }
  ]
}

const revokeGrant = (s: State, grantId: string | undefined): State => {
  if (grantId === undefined) return s
  const g = HashMap.get(s.grants, grantId)
  return Option.isNone(g) ? s : { ...s, grants: HashMap.set(s.grants, grantId, { ...g.value, revoked: true }) }
}

const grantRevoked = (s: State, grantId: string): boolean =>
  Option.match(HashMap.get(s.grants, grantId), { onNone: () => true, onSome: (g) => g.revoked })

/** A grant minted directly (a test's "already logged in"). */
export const mint = (
  s: State,
  clientId: string,
  scope: string,
  fresh: Fresh,
  now: number,
  life: Lifetimes
): [Issued, State] =>
  issue(s, { id: fresh.grantId, clientId, user: s.user, scope, audience: undefined, authTime: now, revoked: false }, fresh, now, life, undefined)

export const addCode = (s: State, code: string, record: CodeRecord): State => ({ ...s, codes: HashMap.set(s.codes, code, record) })

/**
 * `grant_type=authorization_code`. `challengeOfVerifier` is S256 of the presented verifier,
 * hashed before the transition. A wrong verifier leaves the code usable (as oidc-provider
 * does), so a client bug cannot be turned into a denial of the real exchange.
 */
export const exchangeCode = (
  s: State,
  now: number,
  life: Lifetimes,
  fresh: Fresh,
  req: { code: string; clientId: string; redirectUri: string | undefined; challengeOfVerifier: string | undefined }
): [OAuthFailure | Issued, State] => {
  const found = HashMap.get(s.codes, req.code)
  if (Option.isNone(found)) return [failure("invalid_grant", "unknown authorization code"), s]
  const rec = found.value
  if (rec.used) {
    // RFC 6749 §4.1.2: a code presented twice revokes what it produced.
    return [failure("invalid_grant", "authorization code already used"), revokeGrant(s, rec.grantId)]
  }
  if (now >= rec.exp) return [failure("invalid_grant", "authorization code expired"), s]
  if (rec.clientId !== req.clientId) return [failure("invalid_grant", "authorization code was issued to another client"), s]
  if (req.redirectUri !== rec.redirectUri) return [failure("invalid_grant", "redirect_uri does not match the authorization request"), s]
  if (req.challengeOfVerifier === undefined) return [failure("invalid_grant", "code_verifier required (PKCE)"), s]
  if (req.challengeOfVerifier !== rec.challenge) return [failure("invalid_grant", "PKCE verification failed"), s]
  const grant: Grant = {
    id: fresh.grantId,
    clientId: rec.clientId,
    user: rec.user,
    scope: rec.scope,
    audience: rec.audience,
    authTime: now,
    revoked: false
  }
  const consumed = { ...s, codes: HashMap.set(s.codes, req.code, { ...rec, used: true, grantId: grant.id }) }
  return issue(consumed, grant, fresh, now, life, rec.nonce)
}

/**
 * `grant_type=refresh_token` with rotation: the presented token is retired and a new one
 * issued. Presenting a retired token is a replay: the whole grant is revoked (RFC 9700 §4.14.2).
 */
export const refresh = (
  s: State,
  now: number,
  life: Lifetimes,
  fresh: Fresh,
  req: { refreshToken: string; clientId: string }
): [OAuthFailure | Issued, State] => {
  const found = HashMap.get(s.refresh, req.refreshToken)
  if (Option.isNone(found)) return [failure("invalid_grant", "unknown refresh token", 400, "refresh_token_invalidated"), s]
  const rec = found.value
  if (rec.clientId !== req.clientId) return [failure("invalid_grant", "refresh token was issued to another client"), s]
  if (rec.rotated) {
    return [
      failure("invalid_grant", "refresh token already used; the grant is revoked", 400, "refresh_token_reused"),
      revokeGrant(s, rec.grantId)
    ]
  }
  if (grantRevoked(s, rec.grantId)) {
    return [failure("invalid_grant", "the grant was revoked", 400, "refresh_token_invalidated"), s]
  }
  if (now >= rec.exp) return [failure("invalid_grant", "refresh token expired", 400, "refresh_token_expired"), s]
  const grant = Option.getOrThrow(HashMap.get(s.grants, rec.grantId))
  const retired = { ...s, refresh: HashMap.set(s.refresh, req.refreshToken, { ...rec, rotated: true }) }
  return issue(retired, grant, { ...fresh, grantId: grant.id }, now, life, undefined)
}

export const addDevice = (s: State, rec: DeviceRecord): State => ({
  ...s,
  devices: HashMap.set(s.devices, rec.deviceCode, rec),
  userCodes: HashMap.set(s.userCodes, normalizeUserCode(rec.userCode), rec.deviceCode)
})

/** User codes are typed by people: compare without case, spaces or dashes. */
export const normalizeUserCode = (code: string): string => code.toUpperCase().replace(/[^A-Z0-9]/g, "")

/** Approve or deny a pending user code; false when unknown, expired or already decided. */
export const decideDevice = (s: State, now: number, userCode: string, approve: boolean): [boolean, State] => {
  const deviceCode = HashMap.get(s.userCodes, normalizeUserCode(userCode))
  if (Option.isNone(deviceCode)) return [false, s]
  const rec = HashMap.get(s.devices, deviceCode.value)
  if (Option.isNone(rec) || rec.value.status !== "pending" || now >= rec.value.exp) return [false, s]
  const next: DeviceRecord = approve ? { ...rec.value, status: "approved", user: s.user } : { ...rec.value, status: "denied" }
  return [true, { ...s, devices: HashMap.set(s.devices, deviceCode.value, next) }]
}

/** One RFC 8628 §3.4 poll. */
export const pollDevice = (
  s: State,
  now: number,
  life: Lifetimes,
  fresh: Fresh,
  req: { deviceCode: string; clientId: string }
): [OAuthFailure | Issued, State] => {
  const found = HashMap.get(s.devices, req.deviceCode)
  if (Option.isNone(found)) return [failure("invalid_grant", "unknown device code"), s]
  const rec = found.value
  if (rec.clientId !== req.clientId) return [failure("invalid_grant", "device code was issued to another client"), s]
  if (rec.consumed) return [failure("invalid_grant", "device code already used"), s]
  if (now >= rec.exp) return [failure("expired_token", "the device code expired; start again"), s]
  if (rec.status === "denied") return [failure("access_denied", "the user denied the request"), s]
  const polled = (r: DeviceRecord): State => ({ ...s, devices: HashMap.set(s.devices, r.deviceCode, r) })
  if (rec.status === "pending") {
    // The first poll is never too early; later ones must keep the interval (§3.5).
    if (rec.lastPoll !== undefined && now - rec.lastPoll < rec.interval * 1000) {
      return [failure("slow_down", "polling too fast"), polled({ ...rec, lastPoll: now, interval: rec.interval + 5 })]
    }
    return [failure("authorization_pending", "the user has not answered yet"), polled({ ...rec, lastPoll: now })]
  }
  const grant: Grant = {
    id: fresh.grantId,
    clientId: rec.clientId,
    user: rec.user ?? s.user,
    scope: rec.scope,
    audience: rec.audience,
    authTime: now,
    revoked: false
  }
  return issue(polled({ ...rec, consumed: true, lastPoll: now }), grant, fresh, now, life, undefined)
}

/**
 * OpenAI's device poll: once approved, the server hands out an authorization code (and
 * the PKCE verifier it made for it), to be exchanged at the token endpoint.
 */
export const pollOpenAiDevice = (
  s: State,
  now: number,
  req: { deviceAuthId: string; userCode: string },
  code: { code: string; verifier: string; challenge: string; redirectUri: string; ttlMillis: number }
): [{ _tag: "Pending" } | { _tag: "NotFound" } | OAuthFailure | { _tag: "Code" }, State] => {
  const found = HashMap.get(s.devices, req.deviceAuthId)
  if (Option.isNone(found) || normalizeUserCode(found.value.userCode) !== normalizeUserCode(req.userCode)) {
    return [{ _tag: "NotFound" }, s]
  }
  const rec = found.value
  if (rec.consumed) return [{ _tag: "NotFound" }, s]
  if (now >= rec.exp) return [failure("expired_token", "the device code expired; start again"), s]
  if (rec.status === "denied") return [failure("access_denied", "the user denied the request"), s]
  if (rec.status === "pending") return [{ _tag: "Pending" }, { ...s, devices: HashMap.set(s.devices, rec.deviceCode, { ...rec, lastPoll: now }) }]
  const next = addCode(
    { ...s, devices: HashMap.set(s.devices, rec.deviceCode, { ...rec, consumed: true, lastPoll: now }) },
    code.code,
    {
      clientId: rec.clientId,
      redirectUri: code.redirectUri,
      challenge: code.challenge,
      nonce: undefined,
      scope: rec.scope,
      audience: rec.audience,
      user: rec.user ?? s.user,
      exp: now + code.ttlMillis,
      used: false,
      grantId: undefined
    }
  )
  return [{ _tag: "Code" }, next]
}

export type TokenKind = "access_token" | "refresh_token"

export interface Introspection {
  readonly active: boolean
  readonly token_type?: TokenKind
  readonly client_id?: string
  readonly sub?: string
  readonly scope?: string
  readonly exp?: number
  readonly iat?: number
}

/** RFC 7662: what the server knows of a token (by access id or refresh token string). */
export const introspect = (s: State, now: number, accessId: string | undefined, token: string): Introspection => {
  const access = accessId === undefined ? Option.none() : HashMap.get(s.access, accessId)
  if (Option.isSome(access)) {
    const a = access.value
    const grant = HashMap.get(s.grants, a.grantId)
    if (a.revoked || now >= a.exp || Option.isNone(grant) || grant.value.revoked) return { active: false }
    return {
      active: true,
      token_type: "access_token",
      client_id: a.clientId,
      sub: grant.value.user.sub,
      scope: a.scope,
      exp: Math.floor(a.exp / 1000),
      iat: Math.floor(a.iat / 1000)
    }
  }
  const refreshRec = HashMap.get(s.refresh, token)
  if (Option.isSome(refreshRec)) {
    const r = refreshRec.value
    const grant = HashMap.get(s.grants, r.grantId)
    if (r.rotated || now >= r.exp || Option.isNone(grant) || grant.value.revoked) return { active: false }
    return {
      active: true,
      token_type: "refresh_token",
      client_id: r.clientId,
      sub: grant.value.user.sub,
      scope: grant.value.scope,
      exp: Math.floor(r.exp / 1000)
    }
  }
  return { active: false }
}

/**
 * RFC 7009: revoking a refresh token revokes its grant (and with it every access token);
 * revoking an access token revokes that token only. Unknown tokens change nothing.
 */
export const revoke = (s: State, accessId: string | undefined, token: string, clientId: string | undefined): [boolean, State] => {
  const access = accessId === undefined ? Option.none() : HashMap.get(s.access, accessId)
  if (Option.isSome(access)) {
    if (clientId !== undefined && access.value.clientId !== clientId) return [false, s]
    return [true, { ...s, access: HashMap.set(s.access, accessId!, { ...access.value, revoked: true }) }]
  }
  const refreshRec = HashMap.get(s.refresh, token)
  if (Option.isSome(refreshRec)) {
    if (clientId !== undefined && refreshRec.value.clientId !== clientId) return [false, s]
    return [true, revokeGrant(s, refreshRec.value.grantId)]
  }
  return [false, s]
}

/** Revoke the grant a token (access or refresh) belongs to. */
export const revokeGrantOf = (s: State, accessId: string | undefined, token: string): [boolean, State] => {
  const grantId = Option.orElse(
    accessId === undefined ? Option.none<string>() : Option.map(HashMap.get(s.access, accessId), (a) => a.grantId),
    () => Option.map(HashMap.get(s.refresh, token), (r) => r.grantId)
  )
  return Option.isNone(grantId) ? [false, s] : [true, revokeGrant(s, grantId.value)]
}

export const revokeAll = (s: State): State => ({
  ...s,
  grants: HashMap.map(s.grants, (g) => (g.revoked ? g : { ...g, revoked: true }))
})

export const addConsent = (s: State, id: string, params: Readonly<Record<string, string>>): State => ({
  ...s,
  pendingConsents: HashMap.set(s.pendingConsents, id, params)
})

/** The parameters of a consent page, removed so that one decision ends it. */
export const takeConsent = (s: State, id: string): [Readonly<Record<string, string>> | undefined, State] =>
  Option.match(HashMap.get(s.pendingConsents, id), {
    onNone: () => [undefined, s],
    onSome: (p) => [p, { ...s, pendingConsents: HashMap.remove(s.pendingConsents, id) }]
  })

export const grantOfAccess = (s: State, accessId: string): Grant | undefined =>
  Option.getOrUndefined(Option.flatMap(HashMap.get(s.access, accessId), (a) => HashMap.get(s.grants, a.grantId)))
