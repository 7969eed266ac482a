import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { packUnit } from '../../src/protocol/compress.js';
import { createLocalTransport } from '../../src/transport/local.js';
import { defineSyncSuite } from './sync-suite.js';
import { defineTreeSuite } from './tree-suite.js';

async function localAgent(nodePath?: string, compress?: { level: number; unit: number }): Promise<AgentHost> {
  return AgentHost.start(createLocalTransport({ nodePath }), {
    ...(compress ? { compress } : {}),
    agents: 2,
    machineId: 'local',
    name: 'local',
    displayPrefix: '',
    startTimeoutMs: 20_000,
    idleTimeoutMs: 30_000,
  });
}

// Push shape: the CLI's process reads, an agent writes (what local-to-local runs).
defineSyncSuite('local transport, agent writes', {
  open: async () => {
    const source = new LocalHost(2);
    const target = await localAgent();
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

// Pull shape: an agent reads, the CLI's process writes.
defineSyncSuite('local transport, agent reads', {
  open: async () => {
    const source = await localAgent();
    const target = new LocalHost(2);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

defineTreeSuite('trees, local transport, agent writes', async () => {
  const source = new LocalHost(2);
  const target = await localAgent();
  return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
});

// The oldest Node the agent promises to run on (scripts/fetch-node12.sh puts it in .cache; .ci/run fetches it).
const NODE12 = process.env.PDC_NODE12 ?? fileURLToPath(new URL('../../.cache/node12/bin/node', import.meta.url));
if (!existsSync(NODE12)) throw new Error(`Node 12 binary missing at ${NODE12}: run scripts/fetch-node12.sh`);

defineSyncSuite('local transport, agent on Node 12 writes', {
  randomRounds: 4,
  open: async () => {
    const source = new LocalHost(2);
    const target = await localAgent(NODE12);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

// -z with the agent on Node 12: it unpacks what it writes, and packs what it reads.
const Z = { level: 1, unit: packUnit(4096, 1 << 20) };

defineSyncSuite('local transport -z, agent on Node 12 writes', {
  randomRounds: 3,
  compressed: true,
  open: async () => {
    const source = new LocalHost(2);
    const target = await localAgent(NODE12, Z);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

defineSyncSuite('local transport -z, agent on Node 12 reads', {
  randomRounds: 3,
  compressed: true,
  open: async () => {
    const source = await localAgent(NODE12, Z);
    const target = new LocalHost(2);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});
