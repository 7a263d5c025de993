import { ConfigProvider, Effect, Either, Redacted } from "effect"
import { describe, expect, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import * as SecretBox from "../src/SecretBox.js"

const key = () => Redacted.make(new Uint8Array(Crypto.randomBytes(32)))
const b64 = (k: Redacted.Redacted<Uint8Array>) => Buffer.from(Redacted.value(k)).toString("base64")
const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("SecretBox", () => {
  it("seals and opens; the ciphertext holds no plaintext; each seal has its own nonce", () => {
    const box = SecretBox.make(key())
    const a = box.seal("secret-token-value", "row-1")
    const b = box.seal("secret-token-value", "row-1")
    expect(a.keyId).toBe(box.keyId)
    expect(a.nonce).not.toBe(b.nonce)
    expect(a.ciphertext).not.toBe(b.ciphertext)
    expect(Buffer.from(a.ciphertext, "base64").toString("latin1")).not.toContain("secret-token-value")
    expect(Either.getOrThrow(box.open(a, "row-1"))).toBe("secret-token-value")
  })

  it("a value sealed for one context does not open for another, nor altered", () => {
    const box = SecretBox.make(key())
    const sealed = box.seal("x", "principal A")
    const other = box.open(sealed, "principal B")
    expect(Either.isLeft(other) && other.left._tag).toBe("StoreKeyRejected")
    const bytes = Buffer.from(sealed.ciphertext, "base64")
    bytes[0] = bytes[0]! ^ 1
    expect(Either.isLeft(box.open({ ...sealed, ciphertext: bytes.toString("base64") }, "principal A"))).toBe(true)
  })

  it("a previous key opens; a new seal uses the current key; an unknown key names the variable", () => {
    const old = key()
    const sealedOld = SecretBox.make(old).seal("v", "c")
    const rotated = SecretBox.make(key(), [old])
    expect(Either.getOrThrow(rotated.open(sealedOld, "c"))).toBe("v")
    expect(rotated.seal("v", "c").keyId).toBe(rotated.keyId)
    expect(rotated.keyId).not.toBe(sealedOld.keyId)
    const wrong = SecretBox.make(key()).open(sealedOld, "c")
    expect(Either.isLeft(wrong)).toBe(true)
    if (Either.isLeft(wrong)) {
      expect(wrong.left.variable).toBe("AGENT_AUTH_ENCRYPTION_KEY")
      expect(wrong.left.message).toContain("AGENT_AUTH_ENCRYPTION_KEY")
      expect(wrong.left.message).not.toContain(b64(old))
    }
  })

  it.effect("fromEnv: missing, short and non-base64 keys are ConfigInvalid naming the variable, never quoting it", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(withEnv({})(SecretBox.fromEnv))
      expect(missing.field).toBe("AGENT_AUTH_ENCRYPTION_KEY")
      const short = yield* Effect.flip(withEnv({ AGENT_AUTH_ENCRYPTION_KEY: "c2hvcnQ=" })(SecretBox.fromEnv))
      expect(short.message).toContain("5 bytes")
      expect(short.message).not.toContain("c2hvcnQ=")
      const junk = yield* Effect.flip(withEnv({ AGENT_AUTH_ENCRYPTION_KEY: "not base64 at all!" })(SecretBox.fromEnv))
      expect(junk.message).toContain("not base64")
      const k = key()
      const badPrevious = yield* Effect.flip(
        withEnv({ AGENT_AUTH_ENCRYPTION_KEY: b64(k), AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS: "abc" })(SecretBox.fromEnv)
      )
      expect(badPrevious.field).toBe("AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS")
      const old = key()
      const box = yield* withEnv({ AGENT_AUTH_ENCRYPTION_KEY: b64(k), AGENT_AUTH_ENCRYPTION_KEYS_PREVIOUS: ` ${b64(old)} ,` })(
        SecretBox.fromEnv
      )
      expect(box.keyId).toBe(SecretBox.keyIdOf(Redacted.value(k)))
      expect(box.knows(SecretBox.keyIdOf(Redacted.value(old)))).toBe(true)
    }))
})
