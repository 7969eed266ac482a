/**
 * SSH-layer bug found by the fault matrix, owned by src/ssh (not fixed here).
 *
 * When the peer stops answering (sshd SIGSTOPped, a network black hole), closing an
 * SshConnection must still release its socket. connect.ts's endClient() calls
 * client.end() and, after 2 s without 'close', client.destroy(); but ssh2's
 * Client.destroy() only destroys a socket that is still writable, and end() has
 * already ended it, so the half-closed socket stays open (and keeps the CLI's event
 * loop alive) for as long as the peer stays silent. Fix: destroy the socket itself
 * (`client._sock.destroy()`, or `sock.destroy()` in the timer).
 * src/cli/main.ts now exits anyway 3 s after the result is reported, so the CLI no
 * longer hangs; this test checks the SSH layer itself.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveHost } from '../../src/ssh/config.js';
import { connectSsh } from '../../src/ssh/connect.js';
import { signal, sleep, sshdSessionPids } from '../support/cli-child.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { makeHome } from '../ssh/helpers.js';

let sshd: TestSshd;
let stopped: number[] = [];

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  for (const pid of stopped) signal(pid, 'SIGCONT');
  await sshd?.stop();
});

it('close() releases the socket even when the sshd session has stopped answering', async () => {
  const home = makeHome(sshd, { knowHost: true });
  const target = resolveHost(sshd.host, {
    homeDir: home,
    systemConfigFile: null,
    systemDir: join(sshd.dir, 'no-etc-ssh'),
    user: sshd.user,
    port: sshd.port,
    identityFiles: [sshd.clientKey],
    sshAuthSock: '',
  });
  const conn = await connectSsh(target, { homeDir: home, acceptNewHostKey: false, keepaliveIntervalMs: 0 });
  const sock = (conn.client as unknown as { _sock: { destroyed: boolean } })._sock;
  expect(sock.destroyed).toBe(false);
  stopped = sshdSessionPids(sshd.pid);
  expect(stopped.length).toBeGreaterThan(0);
  for (const pid of stopped) signal(pid, 'SIGSTOP');
  await Promise.race([conn.close(), sleep(8000)]);
  await sleep(200);
  expect(sock.destroyed, 'socket destroyed after close() although the peer is silent').toBe(true);
}, 30_000);
