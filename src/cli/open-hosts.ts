import { cpus } from 'node:os';
import type { Location } from '../location.js';
import { AgentHost } from '../hosts/agent-host.js';
import type { FileHost } from '../hosts/file-host.js';
import { LocalHost } from '../hosts/local-host.js';
import { createSshTransport, exitStatusError } from '../ssh/transport.js';
import { createLocalTransport } from '../transport/local.js';
import type { RunConfig } from './options.js';

export interface OpenedHosts {
  source: FileHost;
  target: FileHost;
  close(): Promise<void>;
}

/** Agent start-up may include an SSH login and sending the agent: generous, but bounded. */
const AGENT_START_TIMEOUT_MS = 30_000;

/**
 * Decide where each side lives and start what it needs: the CLI's own process
 * for a local file, agents (local children, or remote over SSH) for the other.
 * Two local files still put the target behind a local agent: the same code path
 * as a remote copy.
 */
export async function openHosts(cfg: RunConfig, log: (line: string) => void, localNode?: string): Promise<OpenedHosts> {
  const agents = cfg.concurrency;
  const workers = Math.max(1, Math.min(cfg.concurrency, cpus().length));
  const remote = cfg.source.kind === 'remote' ? cfg.source : cfg.target.kind === 'remote' ? cfg.target : undefined;
  const common = { idleTimeoutMs: cfg.idleTimeoutMs, startTimeoutMs: AGENT_START_TIMEOUT_MS, log };

  let far: AgentHost;
  if (!remote) {
    far = await AgentHost.start(createLocalTransport({ nodePath: localNode }), {
      ...common,
      agents: Math.min(agents, 2),
      machineId: 'local',
      name: 'local',
      displayPrefix: '',
    });
  } else {
    const hostDisplay = remote.display;
    const started = Date.now();
    const transport = createSshTransport(
      { user: remote.user, host: remote.host, port: remote.port ?? cfg.ssh.port },
      {
        port: cfg.ssh.port,
        identityFiles: cfg.ssh.identityFiles,
        configFile: cfg.ssh.configFile,
        acceptNewHostKey: cfg.ssh.acceptNewHostKey,
        remoteNode: cfg.ssh.remoteNode,
        sudo: cfg.ssh.sudo,
        connections: cfg.ssh.connections,
        log,
      },
    );
    far = await AgentHost.start(transport, {
      ...common,
      agents,
      machineId: `ssh:${hostDisplay}`,
      name: hostDisplay,
      displayPrefix: `${hostDisplay}:`,
      explainExit: (code, stderr) => exitStatusError(code, stderr, hostDisplay),
    });
    log(`connected to ${hostDisplay}: ${agents} agent channel(s) in ${Date.now() - started} ms`);
  }
  const near = new LocalHost(workers);
  const sourceIsFar = cfg.source.kind === 'remote';
  const hosts = sourceIsFar ? { source: far as FileHost, target: near as FileHost } : { source: near as FileHost, target: far as FileHost };
  return {
    ...hosts,
    async close() {
      await Promise.allSettled([far.close(), near.close()]);
    },
  };
}
