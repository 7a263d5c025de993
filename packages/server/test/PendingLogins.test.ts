import { PendingLogins } from "../src/index.js"
import * as PendingLoginsSuite from "./PendingLoginsSuite.js"

PendingLoginsSuite.suite("layerMemory", PendingLogins.layerMemory)
