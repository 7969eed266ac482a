import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { AgentHost, agentsFor } from '../../src/hosts/agent-host.js';
import { createLocalTransport } from '../../src/transport/local.js';

/** Start `agents` local agents (fitted to the cores or not) and wait until all it runs are up. */
async function started(agents: number, fitCores: boolean): Promise<{ host: AgentHost; logs: string[] }> {
  const logs: string[] = [];
  const host = await AgentHost.start(createLocalTransport({}), {
    agents,
    fitCores,
    machineId: 'local',
    name: 'local',
    displayPrefix: '',
    startTimeoutMs: 20_000,
    idleTimeoutMs: 30_000,
    log: (l) => logs.push(l),
  });
  const n = host.parallelism;
  for (let i = 0; i < 200 && n > 1 && !logs.some((l) => l.includes(`${n} of ${n} agents up`)); i++) await new Promise((r) => setTimeout(r, 50));
  return { host, logs };
}

describe('agents fitted to the host\'s cores', () => {
  const cores = availableParallelism(); // what the agent reports on this Node

  it('the first agent reports its host\'s cores; no more agents than that run (at least 2)', async () => {
    const want = agentsFor(3, cores);
    const { host, logs } = await started(3, true);
    try {
      expect(logs.join('\n')).toContain(`${cores} cores: ${want} agents`);
      expect(host.parallelism).toBe(want);
      expect(logs.filter((l) => / of \d+ agents up/.test(l))).toHaveLength(want - 1);
      expect(logs.join('\n')).toContain(`${want} of ${want} agents up`);
    } finally {
      await host.close();
    }
  }, 30_000);

  it('without fitCores (-c given) the requested number run', async () => {
    const { host, logs } = await started(3, false);
    try {
      expect(host.parallelism).toBe(3);
      expect(logs.join('\n')).toContain('3 of 3 agents up');
    } finally {
      await host.close();
    }
  }, 30_000);
});
