/**
 * Host key verification against OpenSSH known_hosts files, since ssh2 reads none:
 * its hostVerifier hands us the raw key blob and we decide.
 *
 * Supported: plain names, comma lists, `*`/`?` wildcards, `!negation`, `[host]:port`,
 * hashed `|1|salt|hash` names, `@revoked` (a matching revoked key is refused as loudly
 * as a changed one). `@cert-authority` lines are skipped: ssh2 does not do host
 * certificates, so a host known only through a CA is "unknown" here.
 *
 * Policy (stricter than OpenSSH on one point): when known_hosts has keys for the host
 * but none equals the presented key, that is CHANGED, even if the recorded keys are of
 * another type. The connection prefers the recorded types (see knownKeyTypes), so this
 * only triggers when the server no longer has the recorded key at all.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PdcError } from '../errors/index.js';

export interface KnownHostEntry {
  file: string;
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** Raw host field: a pattern list, or a hashed `|1|salt|hash` name. */
  hosts: string;
  keyType: string;
  key: Buffer;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise; a HostKeyAlias as is. */
export function knownHostsName(host: string, port: number, hostKeyAlias?: string): string {
  if (hostKeyAlias) return hostKeyAlias.toLowerCase();
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** The key type name inside an SSH public key blob (its first length-prefixed string). */
export function keyBlobType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  if (n > 64 || 4 + n > blob.length) return 'unknown';
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** `SHA256:<base64 without padding>`, as `ssh-keygen -l` and ssh print it. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** ED25519 / ECDSA / RSA / DSA, as in OpenSSH's "ED25519 key fingerprint is ...". */
export function keyTypeLabel(type: string): string {
  if (type === 'ssh-ed25519') return 'ED25519';
  if (type.startsWith('ecdsa-sha2-')) return 'ECDSA';
  if (type === 'ssh-rsa') return 'RSA';
  if (type === 'ssh-dss') return 'DSA';
  if (type.startsWith('sk-ssh-ed25519')) return 'ED25519-SK';
  if (type.startsWith('sk-ecdsa')) return 'ECDSA-SK';
  return type;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/\s+/);
    if (fields[0] === '' || fields[0]!.startsWith('#')) continue;
    let marker: KnownHostEntry['marker'];
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue; // unknown marker: OpenSSH ignores the line too
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) continue;
    const key = Buffer.from(b64, 'base64');
    // A line whose blob does not say the type it claims is corrupt: skip it, as OpenSSH does.
    if (key.length === 0 || keyBlobType(key) !== keyType) continue;
    entries.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  }
  return entries;
}

function globToRegExp(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's');
}

/** OpenSSH match_hostname: any positive pattern matches and no negated one does. Case-insensitive. */
export function hostFieldMatches(hosts: string, name: string): boolean {
  const n = name.toLowerCase();
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(n).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const raw of hosts.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (globToRegExp(pattern).test(n)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** Entries from every readable file, in order. Missing files are normal (no known hosts yet). */
export function loadKnownHosts(files: readonly string[]): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    out.push(...parseKnownHosts(text, f));
  }
  return out;
}

export type HostKeyStatus =
  | { status: 'known'; entry: KnownHostEntry }
  | { status: 'unknown' }
  | { status: 'changed'; entries: KnownHostEntry[] }
  | { status: 'revoked'; entry: KnownHostEntry };

export function checkHostKey(entries: readonly KnownHostEntry[], name: string, blob: Buffer): HostKeyStatus {
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && hostFieldMatches(e.hosts, name));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(blob));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => !e.marker);
  const same = plain.find((e) => e.key.equals(blob));
  if (same) return { status: 'known', entry: same };
  return plain.length ? { status: 'changed', entries: plain } : { status: 'unknown' };
}

/** Key types recorded for the host, so the connection can ask the server for those first (as OpenSSH does). */
export function knownKeyTypes(files: readonly string[], name: string): string[] {
  const types = new Set<string>();
  for (const e of loadKnownHosts(files)) if (!e.marker && hostFieldMatches(e.hosts, name)) types.add(e.keyType);
  return [...types];
}

export interface VerifyHostKeyOptions {
  /** Name the user knows the host by, for messages (e.g. the alias typed). */
  display: string;
  /** From knownHostsName(). */
  name: string;
  /** Files to read: user files first, then global ones. */
  files: readonly string[];
  /** Where a new key is recorded (the first user known_hosts file). */
  userFile: string;
  /** Record an unknown key instead of refusing it (--accept-new-host-key or StrictHostKeyChecking accept-new). */
  acceptNew: boolean;
  /** Record new entries hashed (HashKnownHosts yes). */
  hashNew?: boolean;
  /** Ask the user about an unknown key (TTY only); resolves true to accept and record it. */
  confirm?: (question: string) => Promise<boolean>;
  log?: (msg: string) => void;
}

/** Keys recorded by this process, so parallel connections to a new host write one line, not N. */
const recordedThisProcess = new Set<string>();
/** Decisions in progress: parallel connections to a new host share one question and one answer. */
const deciding = new Map<string, Promise<void>>();
/**
 * Keys the user refused at the prompt: the answer stands for the whole process, so a
 * connection that presents the key after the decision was made (an answer typed ahead
 * ends it at once) is refused without asking again.
 */
const refusedThisProcess = new Set<string>();

/**
 * Decide about a presented host key: resolves when it may be trusted, throws
 * HOST_KEY_UNKNOWN / HOST_KEY_CHANGED otherwise.
 */
export function verifyHostKey(blob: Buffer, opts: VerifyHostKeyOptions): Promise<void> {
  const memo = `${opts.userFile}\0${opts.name}\0${blob.toString('base64')}`;
  if (recordedThisProcess.has(memo)) return Promise.resolve();
  let p = deciding.get(memo);
  if (!p) {
    p = decide(blob, opts, memo).finally(() => deciding.delete(memo));
    deciding.set(memo, p);
  }
  return p;
}

async function decide(blob: Buffer, opts: VerifyHostKeyOptions, memo: string): Promise<void> {
  const type = keyBlobType(blob);
  const fp = fingerprint(blob);
  const label = keyTypeLabel(type);
  const result = checkHostKey(loadKnownHosts(opts.files), opts.name, blob);
  switch (result.status) {
    case 'known':
      return;
    case 'revoked':
      throw new PdcError(
        'HOST_KEY_CHANGED',
        `the ${label} host key of ${opts.display} (${fp}) is REVOKED in ${result.entry.file}:${result.entry.line}: refusing to connect`,
        { hint: 'the server is presenting a key that was explicitly revoked; ask the host owner' },
      );
    case 'changed': {
      const old = result.entries
        .map((e) => `${keyTypeLabel(e.keyType)} ${fingerprint(e.key)} at ${e.file}:${e.line}`)
        .join(', ');
      const first = result.entries[0]!;
      throw new PdcError(
        'HOST_KEY_CHANGED',
        `WARNING: the host key of ${opts.display} has CHANGED (someone could be intercepting the connection): ` +
          `it presents ${label} ${fp}, known_hosts has ${old}`,
        {
          hint:
            `if the change is expected, remove the old key with: ssh-keygen -R '${opts.name}' -f ${first.file} ` +
            '(--accept-new-host-key never overrides a changed key)',
        },
      );
    }
    case 'unknown':
      break;
  }
  let accept = opts.acceptNew;
  if (!accept && opts.confirm && !refusedThisProcess.has(memo)) {
    accept = await opts.confirm(
      `The authenticity of host '${opts.display}' can't be established.\n` +
        `${label} key fingerprint is ${fp}.\n` +
        'Are you sure you want to continue connecting (yes/no)? ',
    );
    if (!accept) refusedThisProcess.add(memo);
  }
  if (!accept) {
    throw new PdcError(
      'HOST_KEY_UNKNOWN',
      `the host key of ${opts.display} is not known: ${label} key fingerprint is ${fp}`,
      {
        hint:
          'check the fingerprint with the host owner (on the server: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), ' +
          `then rerun with --accept-new-host-key (or -o StrictHostKeyChecking=accept-new) to record it in ${opts.userFile}`,
      },
    );
  }
  // Re-read: another process (or connection) may have recorded it meanwhile.
  if (checkHostKey(loadKnownHosts([opts.userFile]), opts.name, blob).status !== 'known') {
    appendKnownHost(opts.userFile, opts.name, blob, opts.hashNew ?? false);
  }
  recordedThisProcess.add(memo);
  opts.log?.(`recorded the ${label} host key ${fp} of ${opts.display} in ${opts.userFile}`);
}

/** Append `name type base64` (name hashed if asked), creating the directory like OpenSSH does (0700). */
export function appendKnownHost(file: string, name: string, blob: Buffer, hashed: boolean): void {
  let hostField = name;
  if (hashed) {
    const salt = randomBytes(20);
    const mac = createHmac('sha1', salt).update(name).digest('base64');
    hostField = `|1|${salt.toString('base64')}|${mac}`;
  }
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    let prefix = '';
    try {
      const existing = readFileSync(file);
      if (existing.length && existing[existing.length - 1] !== 0x0a) prefix = '\n';
    } catch {
      /* new file */
    }
    appendFileSync(file, `${prefix}${hostField} ${keyBlobType(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
  } catch (err) {
    throw new PdcError('HOST_KEY_UNKNOWN', `cannot record the host key in ${file}: ${(err as Error).message}`, {
      hint: `make ${file} writable, or add the key yourself (ssh-keyscan)`,
      cause: err,
    });
  }
}
