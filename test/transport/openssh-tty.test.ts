/**
 * The OpenSSH transport on a real terminal: the client runs inside script(1)'s
 * pseudo-terminal, so the system ssh asks on /dev/tty (no BatchMode), and the test types
 * answers when the questions appear. Each answer is typed only after its own question
 * has appeared, so two ssh processes asking at once would stall the exchange.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBundlePath } from '../../src/transport/agent-bundle.js';
import { makeKey, startSshd, type TestSshd } from '../support/sshd.js';

const require = createRequire(import.meta.url);
let esbuild: typeof import('esbuild') | undefined;
try {
  esbuild = require('esbuild') as typeof import('esbuild');
} catch {
  esbuild = undefined;
}
const hasScript = spawnSync('script', ['--version']).status === 0;

const PASSPHRASE = 'correct horse battery';
let sshd: TestSshd;
let bundle: string;
let encKey: string;
let keyDir: string;
beforeAll(async () => {
  // The key exists before the sshd that must authorize it, so it lives in its own temp dir.
  keyDir = mkdtempSync(join(tmpdir(), 'pdc-openssh-tty-'));
  const enc = makeKey(keyDir, 'enc_key', { passphrase: PASSPHRASE });
  encKey = enc.key;
  sshd = await startSshd({ authorizedKeys: [enc.pub] });
  bundle = join(sshd.dir, 'openssh-tty-client.cjs');
  await esbuild!.build({
    entryPoints: [join(import.meta.dirname, 'fixtures/openssh-tty-client.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bundle,
    logLevel: 'silent',
  });
}, 60_000);
afterAll(async () => {
  await sshd?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

interface Exchange {
  /** Text that triggers typing `answer` (with Enter). */
  when: RegExp;
  answer: string;
  /** How long to wait before typing (default 50 ms): long enough for a second question to show up if one were asked at the same time. */
  delayMs?: number;
}

/** ssh_config for the test sshd with `over` replacing the harness's lines of the same keyword. */
function configWith(name: string, over: Record<string, string>): string {
  const lines = readFileSync(sshd.sshConfig, 'utf8')
    .split('\n')
    .filter((l) => l && !Object.keys(over).some((k) => l.trim().startsWith(k + ' ')));
  const file = join(sshd.dir, name);
  writeFileSync(file, [...lines, ...Object.entries(over).map(([k, v]) => `  ${k} ${v}`), ''].join('\n'));
  return file;
}

/**
 * Run the client in a pseudo-terminal, answering questions in order; resolves with everything
 * it printed and, per answer, how much had been printed when it was typed.
 */
function runInPty(rsh: string, agents: number, exchanges: Exchange[], timeoutMs = 40_000): Promise<{ out: string; typedAt: number[] }> {
  return new Promise((resolve, reject) => {
    const params = { rsh, host: sshd.alias, agents, agentPath: agentBundlePath(), dir: sshd.dir };
    const env: NodeJS.ProcessEnv = { ...process.env, PDC_TTY_CLIENT: JSON.stringify(params) };
    delete env.SSH_AUTH_SOCK;
    const child = spawn('script', ['-qfec', `${process.execPath} ${bundle}`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let next = 0;
    let answered = 0;
    const typedAt: number[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; output so far:\n${out}`));
    }, timeoutMs);
    const onOutput = (d: string) => {
      out += d;
      while (next < exchanges.length && exchanges[next]!.when.test(out.slice(answered))) {
        const ex = exchanges[next++]!;
        answered = out.length;
        setTimeout(() => {
          typedAt.push(out.length);
          child.stdin.write(ex.answer + '\r');
        }, ex.delayMs ?? 50);
      }
      if (/RESULT .*\n/.test(out)) child.stdin.end();
    };
    child.stdout.setEncoding('utf8').on('data', onOutput);
    child.stderr.setEncoding('utf8').on('data', onOutput);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ out, typedAt });
    });
  });
}

describe.skipIf(!esbuild || !hasScript)('-e ssh on a terminal: ssh asks, one ssh at a time', () => {
  it('an encrypted key: each agent\'s ssh asks for the passphrase in turn, and all agents come up', async () => {
    const cfg = configWith('ssh_config.enc', { IdentityFile: encKey });
    const ask = { when: /Enter passphrase for key '.*enc_key': /, answer: PASSPHRASE, delayMs: 1500 };
    const { out, typedAt } = await runInPty(`ssh -F ${cfg}`, 3, [ask, ask, ask]);
    expect(out).toContain(`RESULT ok agents=3 kind=dir batch=false`);
    const asked = [...out.matchAll(/Enter passphrase/g)].map((m) => m.index);
    expect(asked).toHaveLength(3);
    // One at a time: each question appeared only after the previous one was answered.
    expect(asked[1]).toBeGreaterThanOrEqual(typedAt[0]!);
    expect(asked[2]).toBeGreaterThanOrEqual(typedAt[1]!);
    expect(out).not.toContain(PASSPHRASE);
  }, 60_000);

  it('an unknown host key is asked about once; the later agents find it recorded', async () => {
    const known = join(sshd.dir, 'known_hosts.tty');
    writeFileSync(known, '');
    const cfg = configWith('ssh_config.ask', { UserKnownHostsFile: known, GlobalKnownHostsFile: '/dev/null' });
    const { out } = await runInPty(`ssh -F ${cfg}`, 3, [{ when: /Are you sure you want to continue connecting \(yes\/no\/\[fingerprint\]\)\? /, answer: 'yes' }]);
    expect(out).toContain(`RESULT ok agents=3 kind=dir batch=false`);
    expect(out).toContain(sshd.hostKeyFingerprint);
    expect(out.match(/Are you sure/g)).toHaveLength(1);
    expect(readFileSync(known, 'utf8')).toContain(sshd.hostKeyPub);
  }, 60_000);

  it('answering no is HOST_KEY_UNKNOWN, and no other ssh asks again', async () => {
    const known = join(sshd.dir, 'known_hosts.no');
    writeFileSync(known, '');
    const cfg = configWith('ssh_config.no', { UserKnownHostsFile: known, GlobalKnownHostsFile: '/dev/null' });
    const { out } = await runInPty(`ssh -F ${cfg}`, 3, [{ when: /Are you sure/, answer: 'no' }]);
    expect(out).toMatch(/RESULT HOST_KEY_UNKNOWN /);
    expect(out.match(/Are you sure/g)).toHaveLength(1);
    expect(readFileSync(known, 'utf8')).toBe('');
  }, 60_000);
});
