import { cpus } from 'node:os';
import { PdcError } from '../errors/pdc-error.js';
import { AgentHost, type AgentHostOptions } from '../hosts/agent-host.js';
import type { FileHost } from '../hosts/file-host.js';
import { LocalHost } from '../hosts/local-host.js';
import { createLocalTransport } from '../transport/local.js';
import type { RunConfig } from './options.js';

export interface OpenedHosts {
  source: FileHost;
  target: FileHost;
  close(): Promise<void>;
}

/** Agent start-up may include an SSH login and sending the agent: generous, but bounded. */
const AGENT_START_TIMEOUT_MS = 30_000;
/** Local-to-local: agents beyond two only compete for the same cores. */
const MAX_LOCAL_AGENTS = 2;

/**
 * Decide where each side lives and start what it needs: the CLI's own process
 * (plus hash workers) for the local file, agents for the other one: remote over
 * SSH, or local child processes when both files are local (the same code path
 * as a remote copy).
 */
export async function openHosts(cfg: RunConfig, log: (line: string) => void, localNode?: string): Promise<OpenedHosts> {
  // Created first: its hash workers start while the agents come up.
  const near = new LocalHost(Math.max(1, Math.min(cfg.concurrency, cpus().length)));
  let far: AgentHost;
  try {
    far = await startAgents(cfg, log, localNode);
  } catch (e) {
    await near.close();
    throw e;
  }
  const sourceIsFar = cfg.source.kind === 'remote';
  return {
    source: sourceIsFar ? far : near,
    target: sourceIsFar ? near : far,
    async close() {
      await Promise.allSettled([far.close(), near.close()]);
    },
  };
}

async function startAgents(cfg: RunConfig, log: (line: string) => void, localNode?: string): Promise<AgentHost> {
  const common: Pick<AgentHostOptions, 'idleTimeoutMs' | 'startTimeoutMs' | 'log'> = {
    idleTimeoutMs: cfg.idleTimeoutMs,
    startTimeoutMs: AGENT_START_TIMEOUT_MS,
    log,
  };
  const remote = cfg.source.kind === 'remote' ? cfg.source : cfg.target.kind === 'remote' ? cfg.target : undefined;
  if (!remote) {
    return AgentHost.start(createLocalTransport({ nodePath: localNode }), {
      ...common,
      agents: Math.min(cfg.concurrency, MAX_LOCAL_AGENTS),
      machineId: 'local',
      name: 'local',
      displayPrefix: '',
    });
  }
  // Parsed and carried in RunConfig, but no -e transport is wired yet: refuse it rather
  // than connect without it.
  if (cfg.rsh !== undefined) {
    throw new PdcError('USAGE', '-e/--rsh is not supported yet', { hint: 'leave out -e to use the built-in SSH client' });
  }
  const hostDisplay = remote.user ? `${remote.user}@${remote.host}` : remote.host;
  const started = Date.now();
  // Loaded only when needed: ssh2 is the heaviest part of start-up.
  const { createSshTransport, exitStatusError } = await import('../ssh/transport.js');
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
      connectTimeoutMs: cfg.ssh.connectTimeoutMs,
      options: cfg.ssh.options,
      log,
    },
  );
  const far = await AgentHost.start(transport, {
    ...common,
    agents: cfg.concurrency,
    machineId: `ssh:${hostDisplay}`,
    name: remote.host,
    displayPrefix: `${remote.host}:`,
    explainExit: (code, stderr) => exitStatusError(code, stderr, hostDisplay),
  });
  log(`connected to ${hostDisplay}: ${cfg.concurrency} agent channel(s) in ${Date.now() - started} ms`);
  return far;
}
