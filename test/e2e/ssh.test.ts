/**
 * The conformance suite over real SSH (an OpenSSH sshd on 127.0.0.1 started by
 * the harness): push (agents write on the remote) and pull (agents read there).
 */
import { afterAll, beforeAll } from 'vitest';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { packUnit } from '../../src/protocol/compress.js';
import { testAgents } from '../ssh/helpers.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { defineSyncSuite } from './sync-suite.js';
import { defineTreeSuite } from './tree-suite.js';

let sshd: TestSshd;
beforeAll(async () => {
  sshd = await startSshd();
}, 60_000);
afterAll(() => sshd?.stop());

function remoteAgents(compress?: { level: number; unit: number }, connectionThreads?: boolean): Promise<AgentHost> {
  return testAgents(sshd, { connections: 2, agents: 4, compress, ...(connectionThreads !== undefined ? { connectionThreads } : {}) });
}

defineSyncSuite('ssh push (remote agents write)', {
  randomRounds: 6,
  open: async () => {
    const source = new LocalHost(2);
    const target = await remoteAgents();
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

defineTreeSuite('trees, ssh push', async () => {
  const source = new LocalHost(2);
  const target = await remoteAgents();
  return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
});

defineTreeSuite('trees, ssh pull', async () => {
  const source = await remoteAgents();
  const target = new LocalHost(2);
  return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
});

defineSyncSuite('ssh pull (remote agents read)', {
  randomRounds: 6,
  open: async () => {
    const source = await remoteAgents();
    const target = new LocalHost(2);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

// -z: the side that reads packs, the side that writes unpacks (units of 64 KiB for the suite's 4 KiB blocks).
const Z = { level: 1, unit: packUnit(4096, 1 << 20) };

defineSyncSuite('ssh push -z (this process packs, remote agents unpack)', {
  randomRounds: 3,
  compressed: true,
  open: async () => {
    const source = new LocalHost(2);
    const target = await remoteAgents(Z);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

defineSyncSuite('ssh pull -z (remote agents pack, this process unpacks)', {
  randomRounds: 3,
  compressed: true,
  open: async () => {
    const source = await remoteAgents(Z);
    const target = new LocalHost(2);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

// The second connection in a thread of its own (--connection-threads always): half the agents' channels cross threads.
defineSyncSuite('ssh push, connection threads', {
  randomRounds: 3,
  open: async () => {
    const source = new LocalHost(2);
    const target = await remoteAgents(undefined, true);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

defineSyncSuite('ssh pull, connection threads', {
  randomRounds: 3,
  open: async () => {
    const source = await remoteAgents(undefined, true);
    const target = new LocalHost(2);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});
