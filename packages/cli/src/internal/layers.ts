/**
 * The Node layers only a browser login needs: the loopback server (node:http) and the
 * browser launcher. commands/login.ts loads this module with import() when a browser
 * login starts, so no other command loads their code.
 */
import { NodeBrowserLauncher, NodeCallbackServer } from "@agent-auth/node"

export const callbackServer = NodeCallbackServer.layer
export const browserLauncher = NodeBrowserLauncher.layer
