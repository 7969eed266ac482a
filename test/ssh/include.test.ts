/**
 * `Include` end to end: the host alias, port, user, key and known_hosts file of the test
 * sshd come only from a file that ~/.ssh/config includes (relative to ~/.ssh, by a glob),
 * and the built-in client connects with them to the real sshd.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSshTransport } from '../../src/ssh/index.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { isolated, makeHome } from './helpers.js';

let sshd: TestSshd;

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.stop();
});

it('connects to a host defined only in an included file (Include config.d/*.conf)', async () => {
  const home = makeHome(sshd);
  mkdirSync(join(home, '.ssh', 'config.d'), { recursive: true, mode: 0o700 });
  copyFileSync(sshd.sshConfig, join(home, '.ssh', 'config.d', 'test-sshd.conf'));
  writeFileSync(join(home, '.ssh', 'config'), 'Include config.d/*.conf\n');
  const t = createSshTransport({ host: sshd.alias }, isolated(home, sshd));
  try {
    expect(t.target.port).toBe(sshd.port);
    const r = await t.exec('echo included-ok');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('included-ok');
  } finally {
    await t.close();
  }
});
