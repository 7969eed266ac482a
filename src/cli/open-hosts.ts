import { cpus } from 'node:os';
import { PdcError } from '../errors/pdc-error.js';
import { AgentHost, type AgentHostOptions } from '../hosts/agent-host.js';
import { Bandwidth } from '../hosts/bandwidth.js';
import type { FileHost } from '../hosts/file-host.js';
import { LocalHost } from '../hosts/local-host.js';
import { createLocalTransport } from '../transport/local.js';
import { packUnit } from '../protocol/compress.js';
import type { Transport } from '../transport/types.js';
import type { RunConfig } from './options.js';
import { markStartup } from '../startup-marks.js';

export interface OpenedHosts {
  source: FileHost;
  target: FileHost;
  close(): Promise<void>;
}

/** Agent start-up may include an SSH login and sending the agent: generous, but bounded. */
const AGENT_START_TIMEOUT_MS = 30_000;
/** -z: the largest unit a run's blocks are packed in (a bigger block is packed piece by piece). */
const MAX_PACK_UNIT = 1024 * 1024;
/** Local-to-local: agents beyond two only compete for the same cores. */
const MAX_LOCAL_AGENTS = 2;

/**
 * Decide where each side lives and start what it needs: the CLI's own process
 * (plus hash workers) for the local file, agents for the other one: remote over
 * SSH, or local child processes when both files are local (the same code path
 * as a remote copy).
 */
export async function openHosts(cfg: RunConfig, log: (line: string) => void, localNode?: string): Promise<OpenedHosts> {
  // Started as soon as the far side's transport is ready to connect (its modules loaded, its
  // config read), so that the hash workers' start competes with neither: they then start,
  // and hash the local file, while the agents come up.
  let near: LocalHost | undefined;
  const ahead = hashAheadFile(cfg);
  const startNear = (): LocalHost => {
    if (near) return near;
    near = new LocalHost(Math.max(1, Math.min(cfg.concurrency, cpus().length)));
    if (ahead) void near.hashAhead(ahead.path, ahead.role, cfg.blockSize, cfg.hashMethod);
    return near;
  };
  let far: AgentHost;
  try {
    far = await startAgents(cfg, log, startNear, localNode);
  } catch (e) {
    await near?.close();
    throw e;
  }
  const local = startNear();
  const sourceIsFar = cfg.source.kind === 'remote';
  return {
    source: sourceIsFar ? far : local,
    target: sourceIsFar ? local : far,
    async close() {
      if (ahead) log(`hash requests answered from hashing ahead while connecting: ${local.hashedAhead}`);
      await Promise.allSettled([far.close(), local.close()]);
    },
  };
}

/**
 * The local file worth hashing before the other side is up: one file to sync by
 * comparing. It is the source, or (a remote source) the target unless --atomic
 * builds a new file. Whether it is a regular file is HashAhead's to check.
 */
export function hashAheadFile(cfg: Pick<RunConfig, 'sources' | 'target' | 'recursive' | 'wholeFile' | 'atomic'>): { path: string; role: 'source' | 'target' } | undefined {
  if (cfg.sources.length !== 1 || cfg.recursive || cfg.wholeFile) return undefined;
  const source = cfg.sources[0]!;
  if (source.kind === 'local') return { path: source.path, role: 'source' };
  if (cfg.target.kind === 'local' && !cfg.atomic) return { path: cfg.target.path, role: 'target' };
  return undefined;
}

async function startAgents(cfg: RunConfig, log: (line: string) => void, connecting: () => void, localNode?: string): Promise<AgentHost> {
  // Block data crosses between this process and the agents, so -z and --bwlimit apply there.
  const common: Pick<AgentHostOptions, 'idleTimeoutMs' | 'startTimeoutMs' | 'log' | 'compress' | 'bandwidth'> = {
    idleTimeoutMs: cfg.idleTimeoutMs,
    startTimeoutMs: AGENT_START_TIMEOUT_MS,
    log,
    ...(cfg.compressLevel === undefined ? {} : { compress: { level: cfg.compressLevel, unit: packUnit(cfg.blockSize, MAX_PACK_UNIT) } }),
    ...(cfg.bwlimit === undefined ? {} : { bandwidth: new Bandwidth(cfg.bwlimit) }),
  };
  const remote = cfg.source.kind === 'remote' ? cfg.source : cfg.target.kind === 'remote' ? cfg.target : undefined;
  if (!remote) {
    connecting();
    return AgentHost.start(createLocalTransport({ nodePath: localNode }), {
      ...common,
      agents: Math.min(cfg.concurrency, MAX_LOCAL_AGENTS),
      machineId: 'local',
      name: 'local',
      displayPrefix: '',
    });
  }
  const hostDisplay = remote.user ? `${remote.user}@${remote.host}` : remote.host;
  const started = Date.now();
  const { transport, explainExit } = await remoteTransport(cfg, remote, hostDisplay, log);
  connecting();
  const far = await AgentHost.start(transport, {
    ...common,
    agents: cfg.concurrency,
    fitCores: cfg.fitAgentsToCores,
    machineId: `ssh:${hostDisplay}`,
    name: remote.host,
    displayPrefix: `${remote.host}:`,
    explainExit,
  });
  log(`connected to ${hostDisplay}: ${far.parallelism} agent channel(s) in ${Date.now() - started} ms`);
  return far;
}

type RemoteLocation = Extract<RunConfig['source'], { kind: 'remote' }>;

/**
 * The SSH transport for the remote side: the system ssh with -e, else the built-in ssh2 client.
 * `explainExit` names the host as the transport does (ssh2: `hostDisplay`; -e: with the port).
 */
async function remoteTransport(
  cfg: RunConfig,
  remote: RemoteLocation,
  hostDisplay: string,
  log: (line: string) => void,
): Promise<{ transport: Transport; explainExit: (code: number | null, stderr: string) => PdcError | undefined }> {
  const ssh = cfg.ssh;
  if (cfg.rsh !== undefined) {
    const { createOpenSshTransport } = await import('../transport/openssh.js');
    const connectTimeout = ssh.connectTimeoutMs === undefined ? [] : [`ConnectTimeout=${Math.ceil(ssh.connectTimeoutMs / 1000)}`];
    const transport = createOpenSshTransport(
      cfg.rsh,
      { user: remote.user, host: remote.host, port: remote.port ?? ssh.port },
      {
        remoteNode: ssh.remoteNode,
        uploadNode: ssh.uploadNode,
        sudo: ssh.sudo,
        configFile: ssh.configFile,
        identityFiles: ssh.identityFiles,
        acceptNewHostKey: ssh.acceptNewHostKey,
        options: [...ssh.options, ...connectTimeout],
        log,
      },
    );
    markStartup('sshReady');
    return { transport, explainExit: (code, stderr) => transport.explainExit(code, stderr) };
  }
  // Loaded only when needed: ssh2 is the heaviest part of start-up.
  const { createSshTransport, exitStatusError } = await import('../ssh/transport.js');
  const transport = createSshTransport(
    { user: remote.user, host: remote.host, port: remote.port ?? ssh.port },
    {
      port: ssh.port,
      identityFiles: ssh.identityFiles,
      configFile: ssh.configFile,
      acceptNewHostKey: ssh.acceptNewHostKey,
      remoteNode: ssh.remoteNode,
      uploadNode: ssh.uploadNode,
      sudo: ssh.sudo,
      connections: ssh.connections,
      ...(ssh.connectionThreads !== 'auto' ? { connectionThreads: ssh.connectionThreads === 'always' } : {}),
      connectTimeoutMs: ssh.connectTimeoutMs,
      options: ssh.options,
      pulling: remote === cfg.source,
      log,
    },
  );
  markStartup('sshReady');
  return { transport, explainExit: (code, stderr) => exitStatusError(code, stderr, hostDisplay) };
}
