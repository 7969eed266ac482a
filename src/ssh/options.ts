/**
 * `-o Option=value` as ssh(1), scp(1) and `rsync -e ssh` take it: `Key=value` or `Key value`,
 * keys case-insensitive. Values given on the command line take precedence over every
 * config file, and among repeated -o the first value wins (IdentityFile accumulates), as
 * in OpenSSH. An option we cannot honour is a usage error, never silently ignored.
 */
import ssh2Constants from 'ssh2/lib/protocol/constants.js';
import { PdcError } from '../errors/index.js';

/** The options -o accepts, spelled as in ssh_config(5). */
export const SUPPORTED_OPTIONS = [
  'HostName',
  'User',
  'Port',
  'IdentityFile',
  'IdentitiesOnly',
  'IdentityAgent',
  'ProxyJump',
  'ProxyCommand',
  'HostKeyAlias',
  'UserKnownHostsFile',
  'GlobalKnownHostsFile',
  'StrictHostKeyChecking',
  'HashKnownHosts',
  'ConnectTimeout',
  'ServerAliveInterval',
  'ServerAliveCountMax',
  'BatchMode',
  'PubkeyAuthentication',
  'PasswordAuthentication',
  'KbdInteractiveAuthentication',
  'Ciphers',
] as const;

const BY_LOWER = new Map<string, string>(SUPPORTED_OPTIONS.map((o) => [o.toLowerCase(), o]));
const NUMERIC = new Set(['port', 'connecttimeout', 'serveraliveinterval', 'serveralivecountmax']);
const YES_NO = new Set(['identitiesonly', 'hashknownhosts', 'batchmode', 'pubkeyauthentication', 'passwordauthentication', 'kbdinteractiveauthentication']);
const STRICT_VALUES = ['yes', 'no', 'ask', 'accept-new', 'off', 'true', 'false'];

/** Lower-cased option name to value(s), in the shape `ssh-config`'s compute() returns. */
export type OptionValues = Record<string, string | string[]>;

function usage(message: string): PdcError {
  return new PdcError('USAGE', message, {
    hint: `-o accepts ${SUPPORTED_OPTIONS.join(', ')} (as Option=value or "Option value")`,
  });
}

/** Parse the -o list (in the order given). Throws USAGE for malformed or unsupported options. */
export function parseSshOptions(options: readonly string[]): OptionValues {
  const out: OptionValues = {};
  for (const raw of options) {
    const m = /^\s*([A-Za-z]+)(?:\s*=\s*|\s+)(.*?)\s*$/.exec(raw);
    if (!m) {
      if (/^\s*[A-Za-z]+\s*=?\s*$/.test(raw)) throw usage(`-o ${raw}: missing value`);
      throw usage(`-o "${raw}" is not of the form Option=value`);
    }
    const key = m[1]!.toLowerCase();
    const name = BY_LOWER.get(key);
    if (!name) throw usage(`-o ${m[1]}: option not supported by pdiffcopy`);
    // ProxyCommand is the rest of the line as written (it goes to the shell); other values
    // may be wrapped in one pair of double quotes.
    let value = m[2]!;
    if (key !== 'proxycommand' && /^".*"$/.test(value)) value = value.slice(1, -1);
    if (value === '') throw usage(`-o ${name}: missing value`);
    if (NUMERIC.has(key) && !/^\d+$/.test(value)) throw usage(`-o ${name}=${value}: not a number`);
    if (YES_NO.has(key) && !/^(yes|no|true|false)$/i.test(value)) throw usage(`-o ${name}=${value}: expected yes or no`);
    if (key === 'stricthostkeychecking' && !STRICT_VALUES.includes(value.toLowerCase())) {
      throw usage(`-o ${name}=${value}: expected yes, no, ask or accept-new`);
    }
    if (key === 'ciphers') parseCiphers(value, '-o Ciphers');
    if (key === 'identityfile') {
      const prev = out[key];
      out[key] = [...(prev === undefined ? [] : Array.isArray(prev) ? prev : [prev]), value];
    } else if (key === 'proxyjump' || key === 'proxycommand') {
      // One slot for both: whichever is given first wins (ssh_config(5), ProxyJump).
      if (!('proxyjump' in out) && !('proxycommand' in out)) out[key] = value;
    } else if (!(key in out)) {
      out[key] = value;
    }
  }
  return out;
}

/** Ciphers the installed ssh2 can use (it leaves out those this Node's OpenSSL lacks). */
export const SUPPORTED_CIPHERS: readonly string[] = ssh2Constants.SUPPORTED_CIPHER;

/** ssh_config(5) Ciphers: a list replaces the default, `+` appends, `-` removes (wildcards allowed), `^` prepends. */
export interface CipherSpec {
  mode: 'replace' | 'append' | 'remove' | 'prepend';
  names: string[];
}

/** Parse and check a Ciphers value against what ssh2 supports. `where` names its source for errors. */
export function parseCiphers(value: string, where: string): CipherSpec {
  const first = value[0];
  const mode: CipherSpec['mode'] = first === '+' ? 'append' : first === '-' ? 'remove' : first === '^' ? 'prepend' : 'replace';
  const body = mode === 'replace' ? value : value.slice(1);
  const names: string[] = [];
  for (const item of body.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (mode === 'remove' && /[*?]/.test(item)) {
      const re = new RegExp('^' + item.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
      names.push(...SUPPORTED_CIPHERS.filter((c) => re.test(c)));
      continue;
    }
    if (!SUPPORTED_CIPHERS.includes(item)) {
      throw new PdcError('USAGE', `${where}: cipher "${item}" is not supported`, {
        hint: `supported ciphers: ${SUPPORTED_CIPHERS.join(', ')}`,
      });
    }
    names.push(item);
  }
  if (!names.length && mode !== 'remove') throw new PdcError('USAGE', `${where}: no cipher given`, { hint: `supported ciphers: ${SUPPORTED_CIPHERS.join(', ')}` });
  const spec: CipherSpec = { mode, names };
  if (!cipherList(spec).length) throw new PdcError('USAGE', `${where}: "${value}" leaves no cipher`, { hint: `supported ciphers: ${SUPPORTED_CIPHERS.join(', ')}` });
  return spec;
}

/** Our default order: ssh2's default list with aes128-gcm first (the fastest with AES-NI, measured). */
export const DEFAULT_CIPHERS: readonly string[] = [
  'aes128-gcm@openssh.com',
  ...ssh2Constants.DEFAULT_CIPHER.filter((c) => c !== 'aes128-gcm@openssh.com'),
];

/** The cipher list to offer, in preference order. */
export function cipherList(spec: CipherSpec | undefined): string[] {
  const base = [...DEFAULT_CIPHERS];
  if (!spec) return base;
  switch (spec.mode) {
    case 'replace':
      return [...new Set(spec.names)];
    case 'append':
      return [...base, ...spec.names.filter((n) => !base.includes(n))];
    case 'prepend':
      return [...new Set(spec.names), ...base.filter((n) => !spec.names.includes(n))];
    case 'remove':
      return base.filter((n) => !spec.names.includes(n));
  }
}
