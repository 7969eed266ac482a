import { describe, expect, it } from 'vitest';
import { MIN_FITTED_AGENTS, agentsFor } from '../../src/hosts/agent-host.js';

describe('agentsFor', () => {
  // [agents requested, cores the first agent's host reported (undefined: not fitted, or unknown), agents run]
  const cases: Array<[number, number | undefined, number]> = [
    [4, undefined, 4], // -c given, or an agent that does not say
    [4, 0, 4], // os.cpus() empty: unknown, not "none"
    [4, 1, MIN_FITTED_AGENTS],
    [4, 2, 2],
    [4, 3, 3],
    [4, 16, 4],
    [8, 2, 2],
    [1, 2, 1], // never more than requested
    [2, 64, 2],
  ];
  it.each(cases)('%i requested, %s cores -> %i', (requested, cpus, want) => {
    expect(agentsFor(requested, cpus)).toBe(want);
  });
});
