/**
 * Key renewals in the middle of a transfer: the server renews the session keys every 2 MB
 * (RekeyLimit), so the host key is presented again while channel data flows both ways. It must
 * be checked at once against the key accepted when connecting: verified asynchronously, ssh2
 * sent corrupt packets and sshd dropped the connection ("Bad packet length").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { ECHO_AGENT, echoOnAgents, transportTo } from './helpers.js';

describe('key renewals during a transfer', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd({ extraConfig: 'RekeyLimit 2M' });
  }, 30_000);
  afterAll(() => sshd?.stop());

  for (const cipher of ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr']) {
    it(`${cipher}: 2 x 12 MiB through echo agents come back byte for byte across several renewals`, async () => {
      const logs: string[] = [];
      const t = transportTo(sshd, { connections: 1, agentCode: ECHO_AGENT, options: [`Ciphers=${cipher}`], log: (m) => logs.push(m) });
      try {
        for (const { sent, back } of await echoOnAgents(t, 2, 12 << 20)) expect(back.equals(sent)).toBe(true);
      } finally {
        await t.close();
      }
      // One key exchange when connecting, then renewals (each logged as a kex).
      expect(logs.filter((l) => / kex /.test(l)).length).toBeGreaterThan(5);
      expect(logs.some((l) => /lost/.test(l))).toBe(false);
    }, 60_000);
  }
});
