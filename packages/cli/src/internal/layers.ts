/** The Node layers only a browser login needs. */
import { NodeBrowserLauncher, NodeCallbackServer } from "@agent-auth/node"

export const callbackServer = NodeCallbackServer.layer
export const browserLauncher = NodeBrowserLauncher.layer
