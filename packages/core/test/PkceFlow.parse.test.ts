import { describe, expect, it } from "@effect/vitest"
import { Redacted } from "effect"
import { PkceFlow } from "@agent-auth/core"

const code = (i: PkceFlow.CallbackInput) => (i.code === undefined ? undefined : Redacted.value(i.code))

describe("PkceFlow.parseCallbackInput", () => {
  it("reads a full redirect URL", () => {
    const i = PkceFlow.parseCallbackInput(" http://localhost:1455/auth/callback?code=abc&state=xyz&iss=https%3A%2F%2Fauth.example \n")
    expect([code(i), i.state, i.iss]).toEqual(["abc", "xyz", "https://auth.example"])
  })
  it("reads a query string", () => {
    const i = PkceFlow.parseCallbackInput("?code=abc&state=xyz")
    expect([code(i), i.state]).toEqual(["abc", "xyz"])
  })
  it("reads code#state", () => {
    const i = PkceFlow.parseCallbackInput("abc#xyz")
    expect([code(i), i.state]).toEqual(["abc", "xyz"])
  })
  it("reads an error redirect", () => {
    const i = PkceFlow.parseCallbackInput("http://127.0.0.1:5/cb?error=access_denied&error_description=no&state=s")
    expect([i.error, i.errorDescription, code(i)]).toEqual(["access_denied", "no", undefined])
  })
  it("keeps a bare code without a state (so the state check refuses it)", () => {
    const i = PkceFlow.parseCallbackInput("abc")
    expect([code(i), i.state]).toEqual(["abc", undefined])
  })
  it("keeps the code Redacted", () => {
    expect(String(PkceFlow.parseCallbackInput("secretcode#s").code)).not.toContain("secretcode")
  })
})
