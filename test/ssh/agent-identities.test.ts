/**
 * IdentitiesOnly yes with an encrypted IdentityFile whose key is loaded in a real
 * ssh-agent: as with OpenSSH, the agent's copy is used (no terminal, no passphrase), and
 * no other agent key is offered.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSshTransport } from '../../src/ssh/index.js';
import { keygenFingerprint, makeKey, startSshd, type TestSshd } from '../support/sshd.js';
import { isolated, makeHome, pdcError } from './helpers.js';

const PASSPHRASE = 'agent holds me';
let keysDir: string;
let enc: { key: string; pub: string };
let sshd: TestSshd;

beforeAll(async () => {
  keysDir = mkdtempSync(join(tmpdir(), 'pdc-agent-keys-'));
  enc = makeKey(keysDir, 'enc_ed25519', { passphrase: PASSPHRASE });
  sshd = await startSshd({ authorizedKeys: [enc.pub] });
}, 60_000);
afterAll(async () => {
  await sshd?.stop();
  rmSync(keysDir, { recursive: true, force: true });
});

/** A real ssh-agent on its own socket, loaded with `keys` (encrypted ones through SSH_ASKPASS: no terminal). */
function startAgent(dir: string, keys: string[]): { sock: string; stop(): void } {
  const sock = join(dir, 'agent.sock');
  const out = execFileSync('ssh-agent', ['-s', '-a', sock], { encoding: 'utf8' });
  const pid = +/SSH_AGENT_PID=(\d+)/.exec(out)![1]!;
  const askpass = join(dir, 'askpass.sh');
  writeFileSync(askpass, `#!/bin/sh\necho '${PASSPHRASE}'\n`, { mode: 0o700 });
  for (const key of keys) {
    execFileSync('ssh-add', [key], {
      env: { PATH: process.env.PATH, SSH_AUTH_SOCK: sock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }
  return { sock, stop: () => process.kill(pid) };
}

function configFor(home: string, identityFile: string): string {
  const cfg = join(home, 'config');
  writeFileSync(
    cfg,
    [
      'Host target',
      '  HostName 127.0.0.1',
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${identityFile}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${sshd.knownHosts}`,
      '',
    ].join('\n'),
  );
  return cfg;
}

describe('IdentitiesOnly yes with the key in ssh-agent', () => {
  it.each([
    ['found through the .pub beside the key', true],
    ['found through the public half inside the OpenSSH key file', false],
  ])('authenticates through the agent, offering only that key (%s)', async (_label, withPub) => {
    const home = makeHome(sshd);
    // A copy of the encrypted key, with or without its .pub.
    const key = join(home, 'id_enc');
    execFileSync('cp', [enc.key, key]);
    if (withPub) execFileSync('cp', [`${enc.key}.pub`, `${key}.pub`]);
    // The agent holds the (authorized) test client key first: with IdentitiesOnly it must not be offered.
    const agent = startAgent(home, [sshd.clientKey, enc.key]);
    try {
      const logs: string[] = [];
      const t = createSshTransport(
        { host: 'target' },
        isolated(home, sshd, { connections: 1, configFile: configFor(home, key), sshAuthSock: agent.sock, log: (m) => logs.push(m) }),
      );
      try {
        expect((await t.exec('echo via-agent-copy')).stdout).toBe('via-agent-copy\n');
      } finally {
        await t.close();
      }
      const accepted = sshd.log().match(/Accepted publickey for .*/g) ?? [];
      expect(accepted.at(-1)).toContain(keygenFingerprint(`${enc.key}.pub`));
      expect(sshd.log()).not.toContain(keygenFingerprint(`${sshd.clientKey}.pub`));
    } finally {
      agent.stop();
    }
  }, 30_000);

  it('does not fall back to other agent keys when the configured one is not in the agent', async () => {
    const home = makeHome(sshd);
    const agent = startAgent(home, [sshd.clientKey]);
    try {
      const t = createSshTransport(
        { host: 'target' },
        isolated(home, sshd, { connections: 1, configFile: configFor(home, enc.key), sshAuthSock: agent.sock }),
      );
      const e = await pdcError(t.exec('true'));
      await t.close();
      expect(e.code).toBe('AUTH_FAILED');
      expect(e.message).toContain(`key ${enc.key} (encrypted, and no terminal to ask its passphrase)`);
    } finally {
      agent.stop();
    }
  }, 30_000);
});
