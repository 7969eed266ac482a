import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../src/engine/byte-budget.js';

/** A task that runs until the test ends it; `started` lists tasks in the order they were admitted. */
function harness(limit: number) {
  const budget = new ByteBudget(limit);
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  const done: Promise<string>[] = [];
  const add = (name: string, bytes: number) =>
    done.push(
      budget.run(bytes, () => {
        started.push(name);
        return new Promise<string>((resolve) => finish.set(name, () => resolve(name)));
      }),
    );
  const end = async (name: string) => {
    finish.get(name)!();
    await new Promise((r) => setImmediate(r));
  };
  return { budget, started, add, end, done };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('ByteBudget', () => {
  it.each<[string, number, number[], number]>([
    // name, budget, task sizes, how many start at once
    ['small runs fill the budget', 8, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 8],
    ['large runs fit fewer', 8, [4, 4, 4], 2],
    ['mixed sizes stop at the first that does not fit', 8, [3, 3, 3, 1], 2],
    ['a task larger than the budget runs alone', 8, [20, 1], 1],
    ['exactly the budget', 8, [8, 1], 1],
  ])('%s', async (_name, limit, sizes, atOnce) => {
    const h = harness(limit);
    sizes.forEach((s, i) => h.add(`t${i}`, s));
    await settle();
    expect(h.started).toEqual(sizes.slice(0, atOnce).map((_, i) => `t${i}`));
    expect(h.budget.inUse).toBe(sizes.slice(0, atOnce).reduce((a, b) => a + b, 0));
    // Ending tasks one by one admits the rest, in order, never above the budget unless alone.
    for (let i = 0; i < sizes.length; i++) {
      if (!h.started.includes(`t${i}`)) await settle();
      expect(h.started).toContain(`t${i}`);
      expect(h.budget.inUse <= limit || h.started.length - i === 1).toBe(true);
      await h.end(`t${i}`);
    }
    expect(await Promise.all(h.done)).toEqual(sizes.map((_, i) => `t${i}`));
    expect(h.budget.inUse).toBe(0);
  });

  it('keeps order: a small task waits behind a large one that does not fit yet', async () => {
    const h = harness(8);
    h.add('a', 6);
    h.add('big', 6);
    h.add('small', 1);
    await settle();
    expect(h.started).toEqual(['a']);
    await h.end('a');
    expect(h.started).toEqual(['a', 'big', 'small']);
  });

  it('gives the bytes back when a task fails', async () => {
    const budget = new ByteBudget(4);
    await expect(budget.run(4, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(budget.inUse).toBe(0);
    expect(await budget.run(4, async () => 'next')).toBe('next');
  });
});
