/**
 * Prompts on a real terminal: the client runs inside script(1)'s pseudo-terminal, so
 * /dev/tty exists, and the test types answers when the prompts appear.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshTransportOptions } from '../../src/ssh/index.js';
import { makeKey, startSshd, type TestSshd } from '../support/sshd.js';
import { isolated, makeHome } from './helpers.js';

const require = createRequire(import.meta.url);
let esbuild: typeof import('esbuild') | undefined;
try {
  esbuild = require('esbuild') as typeof import('esbuild');
} catch {
  esbuild = undefined;
}
const hasScript = spawnSync('script', ['--version']).status === 0;

let sshd: TestSshd;
let bundle: string;
beforeAll(async () => {
  sshd = await startSshd();
  bundle = join(sshd.dir, 'tty-client.cjs');
  await esbuild!.build({
    entryPoints: [join(import.meta.dirname, 'fixtures/tty-client.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bundle,
    // ssh2 has native parts: load it from the project's node_modules (NODE_PATH below).
    external: ['ssh2'],
    logLevel: 'silent',
  });
}, 60_000);
afterAll(() => sshd?.stop());

interface Exchange {
  /** Text that triggers typing `answer` (with Enter). */
  when: RegExp;
  answer: string;
}

/** Run the client in a pseudo-terminal, answering prompts; resolves with everything it printed. */
function runInPty(options: SshTransportOptions, exchanges: Exchange[], timeoutMs = 30_000, typeAhead?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const params = { host: sshd.host, port: sshd.port, user: sshd.user, options };
    const child = spawn('script', ['-qfec', `${process.execPath} ${bundle}`, '/dev/null'], {
      env: { ...process.env, PDC_TTY_CLIENT: JSON.stringify(params), NODE_PATH: join(process.cwd(), 'node_modules') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    // Typed before any prompt is shown, as a user who answers before reading would.
    if (typeAhead !== undefined) child.stdin.write(typeAhead);
    let next = 0;
    let answered = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; output so far:\n${out}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      // Answer each prompt once, in order, after it has appeared (the prompter is then in raw mode).
      while (next < exchanges.length && exchanges[next]!.when.test(out.slice(answered))) {
        const ex = exchanges[next++]!;
        answered = out.length;
        setTimeout(() => child.stdin.write(ex.answer + '\r'), 50);
      }
      if (/RESULT .*\n/.test(out)) child.stdin.end();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

describe.skipIf(!esbuild || !hasScript)('prompts on a terminal', () => {
  it('asks an encrypted key passphrase once for all connections, without echo', async () => {
    const home = makeHome(sshd, { knowHost: true });
    const passphrase = 'correct horse battery';
    const enc = makeKey(home, 'enc_key', { passphrase });
    // Authorize the encrypted key on the server.
    const ak = join(sshd.dir, 'authorized_keys');
    appendFileSync(ak, enc.pub);
    const out = await runInPty(isolated(home, sshd, { identityFiles: [enc.key], connections: 2 }), [
      { when: /Enter passphrase for key '.*enc_key': /, answer: passphrase },
    ]);
    expect(out).toContain('RESULT connected-42 connections=2');
    expect(out.match(/Enter passphrase/g)).toHaveLength(1);
    expect(out).not.toContain(passphrase);
  }, 60_000);

  it('a wrong passphrase three times skips the key and fails with AUTH_FAILED', async () => {
    const home = makeHome(sshd, { knowHost: true });
    const enc = makeKey(home, 'enc_key2', { passphrase: 'right' });
    const out = await runInPty(isolated(home, sshd, { identityFiles: [enc.key], connections: 1 }), [
      { when: /Enter passphrase/, answer: 'wrong1' },
      { when: /Enter passphrase/, answer: 'wrong2' },
      { when: /Enter passphrase/, answer: 'wrong3' },
    ]);
    expect(out).toMatch(/RESULT AUTH_FAILED .*enc_key2 \(wrong passphrase\)/);
  }, 60_000);

  it('asks about an unknown host key (StrictHostKeyChecking ask) and records it on yes', async () => {
    const home = makeHome(sshd);
    const out = await runInPty(isolated(home, sshd, { identityFiles: [sshd.clientKey], connections: 2 }), [
      { when: /Are you sure you want to continue connecting \(yes\/no\)\? /, answer: 'yes' },
    ]);
    expect(out).toContain(`The authenticity of host '[127.0.0.1]:${sshd.port}' can't be established.`);
    expect(out).toContain(`ED25519 key fingerprint is ${sshd.hostKeyFingerprint}.`);
    expect(out).toContain('RESULT connected-42 connections=2');
    // Two parallel connections, one question.
    expect(out.match(/Are you sure/g)).toHaveLength(1);
    const kh = join(home, '.ssh', 'known_hosts');
    expect(existsSync(kh) && readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostKeyPub}\n`);
  }, 60_000);

  it('answering no refuses the host key', async () => {
    const home = makeHome(sshd);
    const out = await runInPty(isolated(home, sshd, { identityFiles: [sshd.clientKey], connections: 1 }), [
      { when: /Are you sure/, answer: 'no' },
    ]);
    expect(out).toMatch(/RESULT HOST_KEY_UNKNOWN /);
    expect(existsSync(join(home, '.ssh', 'known_hosts'))).toBe(false);
  }, 60_000);

  it('an answer typed before the question is used once: one question for all connections', async () => {
    const home = makeHome(sshd);
    const out = await runInPty(isolated(home, sshd, { identityFiles: [sshd.clientKey], connections: 3 }), [], 30_000, 'no\r');
    expect(out).toMatch(/RESULT HOST_KEY_UNKNOWN /);
    expect(out.match(/Are you sure/g)).toHaveLength(1);
    expect(out).toContain(`The authenticity of host '[127.0.0.1]:${sshd.port}' can't be established.`);
    expect(existsSync(join(home, '.ssh', 'known_hosts'))).toBe(false);
  }, 60_000);
});
