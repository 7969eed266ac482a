/**
 * The host verifier a connection gives ssh2: the first key goes through known_hosts (a promise);
 * a key renewal's key is answered at once, true only for the key accepted before.
 */
import { describe, expect, it } from 'vitest';
import { renewalSafeVerifier } from '../../src/ssh/connect.js';

const K1 = Buffer.from('host key one');
const K2 = Buffer.from('host key two');
const settle = () => new Promise((r) => setImmediate(r));

function setup(firstOutcome: 'accept' | 'refuse') {
  const events: string[] = [];
  const v = renewalSafeVerifier(
    async (key) => {
      events.push(`verifyFirst ${key.toString()}`);
      if (firstOutcome === 'refuse') throw new Error('unknown host');
    },
    (err) => events.push(`refused ${(err as Error).message}`),
    () => events.push('renewal key changed'),
  );
  const answers: boolean[] = [];
  return { v, events, answers, cb: (ok: boolean) => answers.push(ok) };
}

describe('renewalSafeVerifier', () => {
  const cases: { name: string; first: 'accept' | 'refuse'; renewals: Buffer[]; sync: (boolean | undefined)[]; events: string[] }[] = [
    { name: 'the same key on renewal: true at once, known_hosts not read again', first: 'accept', renewals: [K1, K1], sync: [true, true], events: ['verifyFirst host key one'] },
    { name: 'another key on renewal: false at once, reported', first: 'accept', renewals: [K2], sync: [false], events: ['verifyFirst host key one', 'renewal key changed'] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { v, events, answers, cb } = setup(c.first);
      // The first key is answered through the callback (ssh2's asynchronous path): undefined now.
      expect(v(K1, cb)).toBeUndefined();
      await settle();
      expect(answers).toEqual([true]);
      expect(c.renewals.map((k) => v(k, cb))).toEqual(c.sync);
      expect(answers).toEqual([true]);
      expect(events).toEqual(c.events);
    });
  }

  it('a refused first key answers false through the callback and accepts nothing later', async () => {
    const { v, events, answers, cb } = setup('refuse');
    expect(v(K1, cb)).toBeUndefined();
    await settle();
    expect(answers).toEqual([false]);
    expect(events).toEqual(['verifyFirst host key one', 'refused unknown host']);
    // Nothing was accepted: a later call is a first verification again, never a synchronous true.
    expect(v(K1, cb)).toBeUndefined();
  });

  it('keeps its own copy of the accepted key', async () => {
    const { v, cb } = setup('accept');
    const key = Buffer.from(K1);
    v(key, cb);
    await settle();
    key.fill(0);
    expect(v(K1, cb)).toBe(true);
  });
});
