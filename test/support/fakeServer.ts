/**
 * One FakeAuthServer on a 127.0.0.1 socket for a whole test file: started before the
 * file's tests (in registration order, so later `beforeAll` hooks can use it), closed
 * after them.
 */
import { FakeAuthServer } from "@agent-auth/testing"
import { afterAll, beforeAll } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"

export const serveForFile = (
  options: FakeAuthServer.FakeAuthServerOptions,
  /** Receives the started server (a test file keeps it in its own `let`). */
  started: (server: FakeAuthServer.FakeAuthServerShape) => void
): { readonly scope: () => Scope.Scope } => {
  let scope: Scope.CloseableScope | undefined
  beforeAll(async () => {
    scope = await Effect.runPromise(Scope.make())
    started(await Effect.runPromise(Scope.extend(FakeAuthServer.make(options), scope)))
  })
  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  })
  return {
    scope: () => {
      if (scope === undefined) throw new Error("serveForFile: the server is started in beforeAll")
      return scope
    }
  }
}
