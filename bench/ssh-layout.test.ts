/**
 * Throughput of agent channels over 1..N connections, to choose DEFAULT_CONNECTIONS.
 * A measurement, not a check (so it lives in bench/, outside `npm test`): prints a table.
 *   npm run bench:ssh-layout        (PDC_SSH_BENCH_MIB=512 by default)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MAGIC } from '../src/protocol/bootstrap.js';
import { startSshd, type TestSshd } from '../test/support/sshd.js';
import { readBytes, transportTo } from '../test/ssh/helpers.js';

const MIB = 1024 * 1024;
const TOTAL = +(process.env.PDC_SSH_BENCH_MIB ?? 512) * MIB;
const magic = `Buffer.from(${JSON.stringify(AGENT_MAGIC.toString('latin1'))},'latin1')`;

/** Writes `bytes` to stdout, respecting backpressure. */
const sender = (bytes: number) =>
  Buffer.from(
    `process.stdout.write(${magic});var b=Buffer.alloc(1<<20,7),left=${bytes};` +
      'function go(){while(left>0){var n=Math.min(left,b.length);left-=n;if(!process.stdout.write(n===b.length?b:b.slice(0,n)))return process.stdout.once("drain",go);}process.stdout.end(function(){process.exit(0)});}go();',
  );
/** Counts stdin until EOF, then reports the count. */
const receiver = Buffer.from(
  `process.stdout.write(${magic});var n=0;process.stdin.on("data",function(c){n+=c.length}).resume();process.stdin.on("end",function(){process.stdout.end(String(n),function(){process.exit(0)})});`,
);

let sshd: TestSshd;
beforeAll(async () => {
  sshd = await startSshd();
}, 30_000);
afterAll(() => sshd?.stop());

describe('ssh channel throughput', () => {
  const rows: string[] = [];
  afterAll(() => console.log(['| agents | connections | download MB/s | upload MB/s | setup ms |', '|---|---|---|---|---|', ...rows].join('\n')));

  for (const [agents, connections] of [
    [1, 1],
    [4, 1],
    [4, 2],
    [4, 4],
    [8, 2],
    [8, 4],
  ] as const) {
    it(`${agents} agents on ${connections} connection(s)`, async () => {
      const per = Math.floor(TOTAL / agents);
      // Download: remote agents send.
      let t = transportTo(sshd, { connections, agentCode: sender(per) });
      const setup = performance.now();
      let list = await t.spawnAgents(agents);
      const setupMs = performance.now() - setup;
      for (const a of list) await readBytes(a.stdout, AGENT_MAGIC.length, 30_000);
      let t0 = performance.now();
      await Promise.all(
        list.map(
          (a) =>
            new Promise<void>((resolve) => {
              let got = 0;
              a.stdout.on('data', (c: Buffer) => (got += c.length));
              a.stdout.once('end', () => {
                expect(got).toBe(per);
                resolve();
              });
              a.stdout.resume();
            }),
        ),
      );
      const down = (per * agents) / MIB / ((performance.now() - t0) / 1000);
      await t.close();

      // Upload: we send, remote agents count.
      t = transportTo(sshd, { connections, agentCode: receiver });
      list = await t.spawnAgents(agents);
      for (const a of list) await readBytes(a.stdout, AGENT_MAGIC.length, 30_000);
      const chunk = Buffer.alloc(MIB, 9);
      t0 = performance.now();
      await Promise.all(
        list.map(async (a) => {
          let left = per;
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!a.stdin.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
              await new Promise((r) => a.stdin.once('drain', r));
            }
          }
          a.stdin.end();
          const reply = await new Promise<string>((resolve) => {
            let s = '';
            a.stdout.setEncoding('utf8').on('data', (d: string) => (s += d));
            a.stdout.once('end', () => resolve(s));
            a.stdout.resume();
          });
          expect(+reply).toBe(per);
        }),
      );
      const up = (per * agents) / MIB / ((performance.now() - t0) / 1000);
      await t.close();
      rows.push(`| ${agents} | ${connections} | ${down.toFixed(0)} | ${up.toFixed(0)} | ${setupMs.toFixed(0)} |`);
    }, 300_000);
  }
});
