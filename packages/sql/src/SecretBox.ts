/**
 * Encryption at rest for the SQL tables: AES-256-GCM, one random 96-bit nonce per sealed
 * value, the key from `AGENT_AUTH_ENCRYPTION_KEY` (32 bytes, base64) and a key id stored
 * beside every sealed value, so a key can be rotated: values sealed under a key listed in
 * `AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS` still open, and are sealed again under the current
 * key by whoever writes them next.
 *
 * The `context` of `seal`/`open` is authenticated, not stored: a value sealed for one row
 * (say principal A's login) does not open as another row's (principal B's), so swapping
 * rows in the database gains nothing.
 *
 * Also the piece `@agent-auth/server` seals its pending logins with.
 */
import { ConfigInvalid, StoreKeyRejected } from "@agent-auth/core"
import { Config, Context, Effect, Either, Layer, Option, Redacted } from "effect"
import * as Crypto from "node:crypto"

export const keyVariable = "AGENT_AUTH_ENCRYPTION_KEY"
export const previousKeysVariable = "AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS"

/** A sealed value as stored: three strings, base64 (nonce, ciphertext followed by the GCM tag). */
export interface Sealed {
  readonly keyId: string
  readonly nonce: string
  readonly ciphertext: string
}

export interface SecretBoxShape {
  /** The id of the key new values are sealed under. */
  readonly keyId: string
  /** Whether a value sealed under this key id can be opened (the current key or a previous one). */
  readonly knows: (keyId: string) => boolean
  readonly seal: (plaintext: string, context: string) => Sealed
  /** The plaintext; `StoreKeyRejected` naming the variable to fix when the key is unknown or wrong. */
  readonly open: (sealed: Sealed, context: string) => Either.Either<string, StoreKeyRejected>
}

export class SecretBox extends Context.Tag("@agent-auth/sql/SecretBox")<SecretBox, SecretBoxShape>() {}

/** The id of a key: a hash prefix that names it and tells nothing about it. */
export const keyIdOf = (key: Uint8Array): string =>
  Crypto.createHash("sha256").update("agent-auth encryption key id\0").update(key).digest("hex").slice(0, 16)

/** A key from its base64 text; the reason never quotes the text. */
export const parseKey = (text: string, variable: string): Either.Either<Uint8Array, ConfigInvalid> => {
  const trimmed = text.trim()
  const bytes = Buffer.from(trimmed, "base64")
  // Buffer skips characters outside the alphabet: a round trip tells a real base64 string.
  const canonical = /^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) && bytes.toString("base64") === trimmed
  if (!canonical || bytes.length !== 32) {
    return Either.left(
      new ConfigInvalid({
        source: "environment",
        field: variable,
        reason: canonical
          ? `the key is ${bytes.length} bytes; it must be 32 bytes in base64 (make one with \`openssl rand -base64 32\`)`
          : "not base64; it must be 32 bytes in base64 (make one with `openssl rand -base64 32`)"
      })
    )
  }
  return Either.right(new Uint8Array(bytes))
}

/** A box over a current key and earlier ones. */
export const make = (
  current: Redacted.Redacted<Uint8Array>,
  previous: ReadonlyArray<Redacted.Redacted<Uint8Array>> = []
): SecretBoxShape => {
  const keys = new Map<string, Uint8Array>()
  const keyId = keyIdOf(Redacted.value(current))
  keys.set(keyId, Redacted.value(current))
  for (const k of previous) {
    const id = keyIdOf(Redacted.value(k))
    if (!keys.has(id)) keys.set(id, Redacted.value(k))
  }
  const rejected = (sealed: Sealed, reason: string) =>
    new StoreKeyRejected({ variable: keyVariable, keyId: sealed.keyId, currentKeyId: keyId, reason })
  return {
    keyId,
    knows: (id) => keys.has(id),
    seal: (plaintext, context) => {
      const nonce = Crypto.randomBytes(12)
      const cipher = Crypto.createCipheriv("aes-256-gcm", keys.get(keyId)!, nonce)
      cipher.setAAD(Buffer.from(context, "utf8"))
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()])
      return { keyId, nonce: nonce.toString("base64"), ciphertext: body.toString("base64") }
    },
    open: (sealed, context) => {
      const key = keys.get(sealed.keyId)
      if (key === undefined) {
        return Either.left(rejected(
          sealed,
          `${keyVariable} is key ${keyId}${keys.size > 1 ? ` and ${previousKeysVariable} holds ${[...keys.keys()].slice(1).join(", ")}` : ""}`
        ))
      }
      try {
        const body = Buffer.from(sealed.ciphertext, "base64")
        if (body.length < 16) throw new Error("short")
        const decipher = Crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(sealed.nonce, "base64"))
        decipher.setAAD(Buffer.from(context, "utf8"))
        decipher.setAuthTag(body.subarray(body.length - 16))
        return Either.right(Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString("utf8"))
      } catch {
        return Either.left(rejected(sealed, "that key does not open them (the row was altered, or written for another row)"))
      }
    }
  }
}

/** The keys from `AGENT_AUTH_ENCRYPTION_KEY` and `AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS` (comma-separated). */
export const fromEnv: Effect.Effect<SecretBoxShape, ConfigInvalid> = Effect.gen(function*() {
  const env = yield* Effect.all({
    current: Config.option(Config.redacted(keyVariable)),
    previous: Config.option(Config.redacted(previousKeysVariable))
  }).pipe(Effect.mapError((e) => new ConfigInvalid({ source: "environment", field: keyVariable, reason: String(e) })))
  const current = Option.filter(env.current, (v) => Redacted.value(v).trim().length > 0)
  if (Option.isNone(current)) {
    return yield* new ConfigInvalid({
      source: "environment",
      field: keyVariable,
      reason: "not set; a SQL store encrypts what it stores and needs a 32-byte key in base64 (make one with `openssl rand -base64 32`)"
    })
  }
  const key = yield* parseKey(Redacted.value(current.value), keyVariable)
  const previousText = Option.match(env.previous, { onNone: () => "", onSome: Redacted.value })
  const previous: Array<Redacted.Redacted<Uint8Array>> = []
  for (const part of previousText.split(",").map((p) => p.trim()).filter((p) => p.length > 0)) {
    previous.push(Redacted.make(yield* parseKey(part, previousKeysVariable)))
  }
  return make(Redacted.make(key), previous)
})

/** The box from the environment. */
export const layerConfig: Layer.Layer<SecretBox, ConfigInvalid> = Layer.effect(SecretBox, fromEnv)

/** A box over given keys (tests, hosts that keep keys elsewhere). */
export const layer = (
  current: Redacted.Redacted<Uint8Array>,
  previous: ReadonlyArray<Redacted.Redacted<Uint8Array>> = []
): Layer.Layer<SecretBox> => Layer.succeed(SecretBox, make(current, previous))
