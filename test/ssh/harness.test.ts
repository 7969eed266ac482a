import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type TestSshd } from '../support/sshd.js';

// The harness itself, checked with the OpenSSH client: if this fails, every other
// test in test/ssh fails for a reason that is not in our code.
describe('test sshd harness', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  }, 30_000);
  afterAll(() => sshd?.stop());

  it('accepts the OpenSSH client with the generated key, config and known_hosts', () => {
    const out = execFileSync(
      'ssh',
      ['-F', sshd.sshConfig, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', sshd.alias, 'echo ok-$((6*7))'],
      { encoding: 'utf8', timeout: 15_000 },
    );
    expect(out.trim()).toBe('ok-42');
    expect(sshd.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  }, 20_000);
});
