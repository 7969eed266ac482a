import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  hostFieldMatches,
  keyBlobType,
  keyTypeLabel,
  knownHostsName,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/ssh/known-hosts.js';
import { keygenFingerprint, makeKey } from '../support/sshd.js';

const dir = mkdtempSync(join(tmpdir(), 'pdc-kh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyPair(name: string, type = 'ed25519') {
  const k = makeKey(dir, name, { type });
  const [t, b64] = k.pub.trim().split(' ');
  return { type: t!, b64: b64!, blob: Buffer.from(b64!, 'base64'), pubFile: `${k.key}.pub` };
}

const ed = keyPair('ed');
const ed2 = keyPair('ed2');
const ec = keyPair('ec', 'ecdsa');

describe('key blobs', () => {
  it('reads the type and prints fingerprints exactly like ssh-keygen', () => {
    for (const k of [ed, ec]) {
      expect(keyBlobType(k.blob)).toBe(k.type);
      expect(fingerprint(k.blob)).toBe(keygenFingerprint(k.pubFile));
    }
    expect(keyTypeLabel('ssh-ed25519')).toBe('ED25519');
    expect(keyTypeLabel('ecdsa-sha2-nistp256')).toBe('ECDSA');
    expect(keyTypeLabel('ssh-rsa')).toBe('RSA');
  });

  it('names hosts like OpenSSH: bare on port 22, [host]:port otherwise, HostKeyAlias as is', () => {
    expect(knownHostsName('Db1.Example.COM', 22)).toBe('db1.example.com');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
    expect(knownHostsName('::1', 2222)).toBe('[::1]:2222');
    expect(knownHostsName('10.0.0.1', 2222, 'db-alias')).toBe('db-alias');
  });
});

describe('host patterns', () => {
  const table: Array<[string, string, boolean]> = [
    ['db1', 'db1', true],
    ['db1,db2', 'db2', true],
    ['DB1', 'db1', true],
    ['db*', 'db17', true],
    ['db?', 'db17', false],
    ['*.example.com,!bad.example.com', 'good.example.com', true],
    ['*.example.com,!bad.example.com', 'bad.example.com', false],
    ['[10.0.0.1]:2222', '[10.0.0.1]:2222', true],
    ['10.0.0.1', '[10.0.0.1]:2222', false],
    ['[10.0.0.1]:*', '[10.0.0.1]:2222', true],
    ['db1', 'db10', false],
    ['db.1', 'dbx1', false],
  ];
  it.each(table)('%s vs %s -> %s', (field, name, expected) => {
    expect(hostFieldMatches(field, name)).toBe(expected);
  });

  it('matches names hashed by ssh-keygen -H', () => {
    const f = join(dir, 'hashed');
    writeFileSync(f, `db1.example.com ${ed.type} ${ed.b64}\n[10.0.0.1]:2222 ${ec.type} ${ec.b64}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
    const entries = parseKnownHosts(readFileSync(f, 'utf8'), f);
    expect(entries).toHaveLength(2);
    expect(entries.every((e) => e.hosts.startsWith('|1|'))).toBe(true);
    expect(checkHostKey(entries, 'db1.example.com', ed.blob).status).toBe('known');
    expect(checkHostKey(entries, '[10.0.0.1]:2222', ec.blob).status).toBe('known');
    expect(checkHostKey(entries, 'db2.example.com', ed.blob).status).toBe('unknown');
  });
});

describe('checkHostKey', () => {
  const text = [
    '# comment',
    '',
    `db1,db1.example.com ${ed.type} ${ed.b64} comment here`,
    `@cert-authority *.example.com ${ec.type} ${ec.b64}`,
    `@revoked * ${ed2.type} ${ed2.b64}`,
    `broken ssh-ed25519 !!!notbase64`,
    `mismatch ssh-rsa ${ed.b64}`,
  ].join('\n');
  const entries = parseKnownHosts(text, 'kh');

  it('parses what it can and skips corrupt lines', () => {
    expect(entries.map((e) => [e.line, e.marker ?? ''])).toEqual([
      [3, ''],
      [4, 'cert-authority'],
      [5, 'revoked'],
    ]);
  });
  it('known, unknown, changed, revoked', () => {
    expect(checkHostKey(entries, 'db1.example.com', ed.blob).status).toBe('known');
    expect(checkHostKey(entries, 'db9', ed.blob).status).toBe('unknown');
    // A host known only through a CA is unknown here (no host certificates in ssh2).
    expect(checkHostKey(entries, 'x.example.com', ec.blob).status).toBe('unknown');
    const changed = checkHostKey(entries, 'db1', ec.blob);
    expect(changed.status).toBe('changed');
    expect(checkHostKey(entries, 'anything', ed2.blob).status).toBe('revoked');
  });
});

describe('verifyHostKey', () => {
  it('records a new key once and OpenSSH finds it; refuses unknown without acceptNew', async () => {
    const home = mkdtempSync(join(dir, 'home-'));
    const userFile = join(home, '.ssh', 'known_hosts');
    const opts = { display: 'db1', name: '[db1]:2222', files: [userFile], userFile, acceptNew: false };
    await expect(verifyHostKey(ed.blob, opts)).rejects.toMatchObject({
      code: 'HOST_KEY_UNKNOWN',
      message: expect.stringContaining(`ED25519 key fingerprint is ${fingerprint(ed.blob)}`),
    });
    await Promise.all([1, 2, 3].map(() => verifyHostKey(ed.blob, { ...opts, acceptNew: true })));
    expect(readFileSync(userFile, 'utf8')).toBe(`[db1]:2222 ${ed.type} ${ed.b64}\n`);
    await verifyHostKey(ed.blob, opts);
    await expect(verifyHostKey(ec.blob, { ...opts, acceptNew: true })).rejects.toMatchObject({ code: 'HOST_KEY_CHANGED' });
  });

  it('asks through confirm() when allowed, and records on yes', async () => {
    const home = mkdtempSync(join(dir, 'home-'));
    const userFile = join(home, '.ssh', 'known_hosts');
    const questions: string[] = [];
    const opts = { display: 'db2', name: 'db2', files: [userFile], userFile, acceptNew: false };
    await verifyHostKey(ed.blob, { ...opts, confirm: async (q) => (questions.push(q), true) });
    expect(questions).toHaveLength(1);
    expect(questions[0]).toContain(`ED25519 key fingerprint is ${fingerprint(ed.blob)}`);
    expect(readFileSync(userFile, 'utf8')).toBe(`db2 ${ed.type} ${ed.b64}\n`);
  });

  it('a "no" stands for the process: later connections are refused without asking again', async () => {
    const home = mkdtempSync(join(dir, 'home-'));
    const userFile = join(home, '.ssh', 'known_hosts');
    let asked = 0;
    const opts = { display: 'db3', name: 'db3', files: [userFile], userFile, acceptNew: false, confirm: async () => (asked++, false) };
    // The first decision is over before the next connection presents the key (an answer typed ahead).
    await expect(verifyHostKey(ed.blob, opts)).rejects.toMatchObject({ code: 'HOST_KEY_UNKNOWN' });
    await expect(verifyHostKey(ed.blob, opts)).rejects.toMatchObject({ code: 'HOST_KEY_UNKNOWN' });
    await expect(verifyHostKey(ed.blob, { ...opts, confirm: async () => (asked++, true) })).rejects.toMatchObject({
      code: 'HOST_KEY_UNKNOWN',
    });
    expect(asked).toBe(1);
    // An explicit opt-in still records it; another host is still asked about.
    await verifyHostKey(ed.blob, { ...opts, acceptNew: true });
    await expect(verifyHostKey(ed.blob, { ...opts, name: 'db4' })).rejects.toMatchObject({ code: 'HOST_KEY_UNKNOWN' });
    expect(asked).toBe(2);
  });

  it('appends on a new line when the file lacks a final newline', () => {
    const f = join(dir, 'no-newline');
    writeFileSync(f, `db1 ${ed.type} ${ed.b64}`);
    appendKnownHost(f, 'db3', ec.blob, false);
    const entries = parseKnownHosts(readFileSync(f, 'utf8'), f);
    expect(entries.map((e) => e.hosts)).toEqual(['db1', 'db3']);
  });
});
