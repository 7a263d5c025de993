/**
 * @agent-auth/node — Node layers for the core services.
 */

/** The file store (`credentials.json`, 0600, atomic, cross-process lock). */
export * as NodeTokenStore from "./NodeTokenStore.js"
export * as NodeCodexStore from "./NodeCodexStore.js"
/** The system keychain (`layerKeyring`), and `layerAuto`: the keychain where it answers, else the file. */
export * as NodeKeyringStore from "./NodeKeyringStore.js"
/** The loopback receiver of a browser login. */
export * as NodeCallbackServer from "./NodeCallbackServer.js"
/** Opening the browser, or saying why not. */
export * as NodeBrowserLauncher from "./NodeBrowserLauncher.js"
/** Private, durable file writes (temp + fsync + rename, 0600): the one implementation. */
export * as NodeFiles from "./NodeFiles.js"
/** Everything wired for a Node program. */
export * as NodeAuth from "./NodeAuth.js"
