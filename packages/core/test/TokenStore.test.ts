/** The shared TokenStore suite against `layerMemory`, the reference implementation. */
import { TokenStore } from "@agent-auth/core"
import * as TokenStoreSuite from "@agent-auth/testing/TokenStoreSuite"

TokenStoreSuite.suite("layerMemory", TokenStore.layerMemory)
