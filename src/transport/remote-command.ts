/**
 * How both remote transports (ssh2 and OpenSSH) start an agent: the remote command is the
 * constant loader (src/protocol/bootstrap.ts) and the agent's code follows on stdin. The only
 * words the command takes are --remote-node, the node --upload-node cached, and sudo.
 */
import { buildRemoteCommand, type CachedNode, encodeAgentPayload } from '../protocol/bootstrap.js';
import { agentBundleCode } from './agent-bundle.js';
import { prepareRemoteNode, type RemoteRunner } from './node-upload.js';

/** The options of a remote transport that shape the agent's launch. */
export interface RemoteAgentOptions {
  /** Node binary on the remote (default: node, then nodejs, from PATH). */
  remoteNode?: string;
  /** Run the agent through `sudo -n`. */
  sudo?: boolean;
  /** Code sent to the loader instead of dist/agent.cjs (tests, stand-in agents). */
  agentCode?: Buffer;
}

/** The loader command the agents run; `cachedNode` (from --upload-node) wins over --remote-node. */
export function agentCommand(opts: RemoteAgentOptions, cachedNode?: CachedNode): string {
  return buildRemoteCommand({
    ...(opts.remoteNode ? { nodePath: opts.remoteNode } : {}),
    ...(cachedNode ? { cachedNode } : {}),
    ...(opts.sudo ? { sudo: true } : {}),
  });
}

/** What the loader reads from the agent's stdin: the agent's code. */
export function agentPayload(opts: RemoteAgentOptions): Buffer {
  return encodeAgentPayload(opts.agentCode ?? agentBundleCode());
}

/** --upload-node: the node the agents run from the cache, or undefined when the remote's own node will do (node-upload.ts). */
export function prepareAgentNode(runner: RemoteRunner, opts: RemoteAgentOptions, display: string, log: (msg: string) => void): Promise<CachedNode | undefined> {
  return prepareRemoteNode(runner, { display, log, ...(opts.remoteNode ? { remoteNode: opts.remoteNode } : {}) });
}
