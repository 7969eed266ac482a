/**
 * Reused receive memory over a real sshd: frames echoed back by agents arrive byte for byte
 * while the connection refills its two slabs, poisoned before each refill (so a view kept past
 * its read would show garbage), and while the server renews the keys every 2 MB (the key exchange
 * keeps views of the packets it received: the guard must copy them).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFrames } from '../../src/protocol/frame-reader.js';
import { PAYLOAD_KEY, writeFrame } from '../../src/protocol/framing.js';
import { DIRECT_WINDOW_BYTES, WINDOW_STEP_BYTES, partialPacketStats } from '../../src/ssh/receive-guard.js';
import { poisonReusedSlabs, slabStats } from '../../src/ssh/slab-socket.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { ECHO_AGENT, echoStarted, echoThrough, readBytes, transportTo } from './helpers.js';

describe('reused receive memory over a real sshd', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd({ extraConfig: 'RekeyLimit 2M' });
  }, 30_000);
  afterAll(() => sshd?.stop());

  it('data queued in a channel nobody reads directly stays right while the slabs are refilled', async () => {
    const t = transportTo(sshd, { connections: 1, agentCode: ECHO_AGENT });
    poisonReusedSlabs(true);
    try {
      const [queued, busy] = await t.spawnAgents(2);
      for (const a of [queued!, busy!]) await echoStarted(a);
      // `queued` is read through 'data' events (no direct reader) and paused: what arrives waits in its stream.
      queued!.stdout.pause();
      const held = randomBytes(1536 * 1024);
      queued!.stdin.write(held);
      // Meanwhile `busy` moves 16 MiB through the same connection: each slab is refilled several times.
      const msg = randomBytes(16 << 20);
      expect((await echoThrough(busy!, msg)).equals(msg)).toBe(true);
      expect((await readBytes(queued!.stdout, held.length, 30_000)).equals(held)).toBe(true);
    } finally {
      poisonReusedSlabs(false);
      await t.close();
    }
  }, 60_000);

  for (const cipher of ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr']) {
    it(`${cipher}: 2 x 16 MiB of frames come back byte for byte through reused, poisoned slabs and key renewals`, async () => {
      const logs: string[] = [];
      const t = transportTo(sshd, { connections: 1, agentCode: ECHO_AGENT, options: [`Ciphers=${cipher}`], log: (m) => logs.push(m) });
      const before = slabStats();
      const partialsBefore = partialPacketStats();
      poisonReusedSlabs(true);
      try {
        const agents = await t.spawnAgents(2);
        await Promise.all(
          agents.map(async (a) => {
            await echoStarted(a);
            const sent = Array.from({ length: 64 }, (_, n) => ({ n, payload: randomBytes(256 * 1024 + n) }));
            const got: Record<string, unknown>[] = [];
            const supplied = new Map<number, Buffer>();
            let lowestWindow = Infinity;
            const all = new Promise<void>((resolve, reject) => {
              const reader = readFrames(
                a.stdout,
                (m) => {
                  lowestWindow = Math.min(lowestWindow, (a.stdout as unknown as { incoming: { window: number } }).incoming.window);
                  got.push(m as Record<string, unknown>);
                  if (got.length === sent.length) resolve();
                },
                reject,
                {
                  payloadInto: (m, length) => {
                    const into = Buffer.alloc(length);
                    supplied.set(m.n as number, into);
                    return into;
                  },
                },
              );
              // Agent channels of a connection reached directly are read directly, copied out.
              expect(reader.copies).toBe(true);
            });
            for (const f of sent) writeFrame(a.stdin, { n: f.n }, f.payload);
            await all;
            // A channel read directly keeps a window above ssh2's own (2 MiB, topped up below 1 MiB).
            expect(lowestWindow).toBeGreaterThanOrEqual(DIRECT_WINDOW_BYTES - WINDOW_STEP_BYTES - 35_000);
            // Checked only at the end, after about 32 refills of each slab.
            expect(got.map((m) => m.n)).toEqual(sent.map((f) => f.n));
            for (const [i, m] of got.entries()) {
              const p = (m[PAYLOAD_KEY] as Buffer[])[0]!;
              expect(p.equals(sent[i]!.payload), `frame ${i}`).toBe(true);
              expect(p.buffer).toBe(supplied.get(i)!.buffer);
            }
          }),
        );
      } finally {
        poisonReusedSlabs(false);
        await t.close();
      }
      const after = slabStats();
      expect(after.reused - before.reused).toBeGreaterThan(20);
      // Slabs allocated: one before the connection was ready, two after (a few more if reads overlap runs).
      expect(after.allocated - before.allocated).toBeLessThan(8);
      expect(logs.filter((l) => / kex /.test(l)).length).toBeGreaterThan(3);
      // Packets split across reads (about one per read: how many depends on the reads' sizes) were
      // assembled in pooled buffers, most of them in a buffer handed out before.
      const partials = partialPacketStats();
      const reused = partials.reused - partialsBefore.reused;
      const allocated = partials.allocated - partialsBefore.allocated;
      expect(reused).toBeGreaterThan(allocated);
      expect(allocated).toBeLessThan(16);
    }, 60_000);
  }
});
