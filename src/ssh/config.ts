/**
 * Resolve a destination through OpenSSH client configuration (ssh_config(5)) with the
 * `ssh-config` package, the way `ssh` would for the options we use.
 *
 * Files: `-F FILE` alone if given (like ssh -F, which also skips the system file);
 * otherwise ~/.ssh/config, then /etc/ssh/ssh_config. The first value found wins:
 * explicit flags (user@, port, -i) first, then `-o Option=value` (see options.ts), then
 * the files in order. ProxyJump and ProxyCommand compete for one slot: whichever comes
 * first wins, and `none` counts as a value (ssh_config(5)).
 *
 * Honoured: Host, Match (host, originalhost, user, localuser, all, final), Include
 * (inlined where it appears; `*`/`?` in the file name part), HostName (with %h),
 * User, Port, IdentityFile, IdentitiesOnly, IdentityAgent, ProxyJump, ProxyCommand,
 * HostKeyAlias, UserKnownHostsFile, GlobalKnownHostsFile, StrictHostKeyChecking,
 * HashKnownHosts, ConnectTimeout, ServerAliveInterval, ServerAliveCountMax, BatchMode,
 * PubkeyAuthentication, PasswordAuthentication, KbdInteractiveAuthentication, Ciphers.
 * Tokens: ~, %% %d %u %h %r %n %p %i %l %L (others are left as written); ProxyCommand
 * takes only %% %h %n %p %r, as in OpenSSH.
 *
 * Not supported (ssh2 or this tool has no equivalent, or it is not worth it):
 * - `Match exec` is never run (evaluated as false): a config file must not make us run commands.
 *   ProxyCommand is run, as ssh would: it is the user's own command for reaching the host.
 * - ControlMaster/ControlPath (we open our own connections), CertificateFile, GSSAPI,
 *   hostbased authentication, CanonicalizeHostName, AddressFamily, BindAddress,
 *   MACs/KexAlgorithms (ssh2 negotiates its own list), LocalForward and friends, SendEnv,
 *   KnownHostsCommand, VerifyHostKeyDNS, UpdateHostKeys.
 * - An Include inside a Host/Match block is inlined textually: lines after it belong to
 *   the last Host block of the included file, where OpenSSH would keep them in the outer one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname as osHostname, userInfo } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import SSHConfig from 'ssh-config';
import { PdcError } from '../errors/index.js';
import { type CipherSpec, type OptionValues, parseCiphers, parseSshOptions } from './options.js';

export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

export type StrictHostKeyChecking = 'yes' | 'no' | 'ask' | 'accept-new';

export interface SshHostConfig {
  /** The name as given (an alias, or a host name). */
  alias: string;
  /** What we connect to (HostName, else the alias). */
  hostName: string;
  user: string;
  port: number;
  /** Expanded paths: command line first, then config. Empty: use the default keys. */
  identityFiles: string[];
  identitiesOnly: boolean;
  /** ssh-agent socket; undefined: none. */
  agentSocket?: string;
  /** Hops to go through, nearest first, each resolved (their own proxyJump is empty). */
  proxyJump: SshHostConfig[];
  /**
   * ProxyCommand with its tokens expanded, for the host reached first (the destination, or
   * its first ProxyJump hop); undefined: connect over TCP.
   */
  proxyCommand?: string;
  /** Ciphers from the config or -o; undefined: ssh2's list with aes128-gcm first. */
  ciphers?: CipherSpec;
  hostKeyAlias?: string;
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  strictHostKeyChecking: StrictHostKeyChecking;
  hashKnownHosts: boolean;
  connectTimeoutMs?: number;
  serverAliveIntervalMs?: number;
  serverAliveCountMax?: number;
  batchMode: boolean;
  pubkeyAuthentication: boolean;
  passwordAuthentication: boolean;
  kbdInteractiveAuthentication: boolean;
  /** Config files that were read, for -v logs. */
  configFiles: string[];
}

export interface ResolveOptions {
  homeDir: string;
  /** -F FILE. */
  configFile?: string;
  /** The system-wide file; default /etc/ssh/ssh_config. Tests pass null to skip it. */
  systemConfigFile?: string | null;
  /** Directory of the global known_hosts files; default /etc/ssh. */
  systemDir?: string;
  user?: string;
  port?: number;
  identityFiles?: string[];
  /** Default for the agent socket (normally process.env.SSH_AUTH_SOCK). */
  sshAuthSock?: string;
  /** `-o Option=value` (or "Option value") in the order given; they apply to the destination, not to jump hosts. */
  options?: readonly string[];
}

const MAX_INCLUDE_DEPTH = 16;

function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'root';
  }
}

/** Read a config file with its Includes inlined. `baseDir` resolves relative Include paths. */
function loadConfigText(file: string, baseDir: string, homeDir: string, depth: number, seen: string[]): string {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new PdcError('USAGE', `ssh config: Include nested more than ${MAX_INCLUDE_DEPTH} deep at ${file}`, {
      hint: 'check for an Include loop',
    });
  }
  const text = readFileSync(file, 'utf8');
  seen.push(file);
  return text
    .split('\n')
    .map((line) => {
      const m = /^\s*include(?:\s*=\s*|\s+)(.+?)\s*$/i.exec(line);
      if (!m) return line;
      const parts: string[] = [];
      for (const word of splitWords(m[1]!)) {
        let p = expandTilde(word, homeDir);
        if (!isAbsolute(p)) p = join(baseDir, p);
        for (const f of globFiles(p)) parts.push(loadConfigText(f, baseDir, homeDir, depth + 1, seen));
      }
      return parts.join('\n');
    })
    .join('\n');
}

function splitWords(s: string): string[] {
  const out: string[] = [];
  for (const m of s.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

/** Wildcards only in the last path component, which covers `config.d/*` and `*.conf`. */
function globFiles(p: string): string[] {
  const dir = dirname(p);
  const base = p.slice(dir.length + 1);
  if (!/[*?]/.test(base)) {
    try {
      return statSync(p).isFile() ? [p] : [];
    } catch {
      return []; // OpenSSH ignores a missing Include file
    }
  }
  const re = new RegExp('^' + base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => re.test(n) && !n.startsWith('.'))
    .sort()
    .map((n) => join(dir, n))
    .filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    });
}

function expandTilde(p: string, homeDir: string): string {
  if (p === '~') return homeDir;
  if (p.startsWith('~/')) return join(homeDir, p.slice(2));
  return p;
}

interface TokenContext {
  homeDir: string;
  localUser: string;
  hostName: string;
  remoteUser: string;
  alias: string;
  port: number;
}

/** `~` and the % tokens of ssh_config(5) "TOKENS" that make sense here. */
export function expandTokens(value: string, ctx: TokenContext): string {
  const expanded = value.replace(/%(.)/g, (all, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return ctx.homeDir;
      case 'u':
        return ctx.localUser;
      case 'h':
        return ctx.hostName;
      case 'r':
        return ctx.remoteUser;
      case 'n':
        return ctx.alias;
      case 'p':
        return String(ctx.port);
      case 'i':
        return String(process.getuid?.() ?? '');
      case 'L':
        return osHostname().split('.')[0]!;
      case 'l':
        return osHostname();
      default:
        return all;
    }
  });
  return expandTilde(expanded, ctx.homeDir);
}

type Computed = Record<string, string | string[]>;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function list(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean);
}

function yesNo(v: string | string[] | undefined, dflt: boolean): boolean {
  const s = first(v)?.toLowerCase();
  if (s === undefined) return dflt;
  return s === 'yes' || s === 'true';
}

function seconds(v: string | string[] | undefined, what: string, file: string): number | undefined {
  const s = first(v);
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s)) throw new PdcError('USAGE', `ssh config ${file}: ${what} "${s}" is not a number of seconds`);
  return +s * 1000;
}

/** `[user@]host[:port]`, `[user@][v6]:port` or `ssh://[user@]host[:port]`: one ProxyJump hop. */
export function parseJumpSpec(spec: string): JumpSpec {
  const s = spec.startsWith('ssh://') ? spec.slice(6).replace(/\/$/, '') : spec;
  const m = /^(?:(.+)@)?(\[[^\]]+\]|[^:@[\]]+)(?::(\d+))?$/.exec(s);
  if (!m) {
    throw new PdcError('USAGE', `ProxyJump hop "${spec}" is not of the form [user@]host[:port]`, {
      hint: 'e.g. ProxyJump admin@bastion:2222,inner',
    });
  }
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  const port = m[3] === undefined ? undefined : +m[3];
  if (port !== undefined && (port < 1 || port > 65535)) {
    throw new PdcError('USAGE', `ProxyJump hop "${spec}": port ${port} is out of range`);
  }
  return { ...(m[1] ? { user: m[1] } : {}), host, ...(port !== undefined ? { port } : {}) };
}

function loadConfigs(opts: ResolveOptions): Array<{ file: string; config: SSHConfig }> {
  const files: Array<{ file: string; baseDir: string; required: boolean }> = [];
  if (opts.configFile) {
    files.push({ file: opts.configFile, baseDir: join(opts.homeDir, '.ssh'), required: true });
  } else {
    files.push({ file: join(opts.homeDir, '.ssh', 'config'), baseDir: join(opts.homeDir, '.ssh'), required: false });
    const sys = opts.systemConfigFile === undefined ? '/etc/ssh/ssh_config' : opts.systemConfigFile;
    if (sys) files.push({ file: sys, baseDir: dirname(sys), required: false });
  }
  const out: Array<{ file: string; config: SSHConfig }> = [];
  for (const f of files) {
    let text: string;
    try {
      text = loadConfigText(f.file, f.baseDir, opts.homeDir, 0, []);
    } catch (err) {
      if (err instanceof PdcError) throw err;
      if (!f.required && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new PdcError('USAGE', `cannot read ssh config ${f.file}: ${(err as Error).message}`, {
        hint: 'check the path given to --ssh-config (-F)',
        cause: err,
      });
    }
    try {
      out.push({ file: f.file, config: SSHConfig.parse(text) });
    } catch (err) {
      throw new PdcError('USAGE', `cannot parse ssh config ${f.file}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}

const PROXY_KEYS = ['proxyjump', 'proxycommand'];

/** Command-line values first, then each file's: the first value wins, IdentityFile accumulates. */
function computeMerged(configs: Array<{ file: string; config: SSHConfig }>, host: string, user: string | undefined, cmdline: OptionValues): Computed {
  const merged: Computed = { ...cmdline };
  const matchUser = user ?? first(cmdline['user']);
  for (const { config } of configs) {
    // matchExec:false: `Match exec` must never run a command from a config file.
    const c = config.compute({ Host: host, ...(matchUser !== undefined ? { User: matchUser } : {}) }, { ignoreCase: true, matchExec: false });
    // compute() keeps the file's order, so the first of ProxyJump/ProxyCommand is seen first.
    for (const [k, v] of Object.entries(c)) {
      if (k === 'identityfile') merged[k] = [...list(merged[k]), ...list(v)];
      else if (PROXY_KEYS.includes(k)) {
        if (!PROXY_KEYS.some((p) => p in merged)) merged[k] = v;
      } else if (!(k in merged)) merged[k] = v;
    }
  }
  return merged;
}

/** ProxyCommand tokens (ssh_config(5) TOKENS: %%, %h, %n, %p, %r); any other is an error, as in ssh. */
export function expandProxyCommand(command: string, ctx: { hostName: string; alias: string; port: number; remoteUser: string }): string {
  return command.replace(/%(.?)/g, (_all, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'h':
        return ctx.hostName;
      case 'n':
        return ctx.alias;
      case 'p':
        return String(ctx.port);
      case 'r':
        return ctx.remoteUser;
      default:
        throw new PdcError('USAGE', `ProxyCommand "${command}": unknown token %${c}`, {
          hint: 'ProxyCommand accepts %h (host), %p (port), %r (user), %n (name as typed) and %% (a literal %)',
        });
    }
  });
}

/** Resolve `host` (an alias or a name) to everything needed to connect to it, ProxyJump hops included. */
export function resolveHost(host: string, opts: ResolveOptions): SshHostConfig {
  const cmdline = parseSshOptions(opts.options ?? []);
  const configs = loadConfigs(opts);
  return resolveWith(configs, host, opts, 0, true, cmdline);
}

function resolveWith(
  configs: Array<{ file: string; config: SSHConfig }>,
  alias: string,
  opts: ResolveOptions,
  depth: number,
  expandJump: boolean,
  cmdline: OptionValues = {},
): SshHostConfig {
  const c = computeMerged(configs, alias, opts.user, cmdline);
  const file = configs.map((x) => x.file).join(', ') || '(none)';
  const localUser = localUserName();
  const user = opts.user ?? first(c['user']) ?? localUser;
  const port = portOf(first(c['port']), opts, alias, file);
  const ctx0: TokenContext = { homeDir: opts.homeDir, localUser, hostName: alias, remoteUser: user, alias, port };
  const hostName = expandTokens(first(c['hostname']) ?? alias, ctx0);
  const ctx: TokenContext = { ...ctx0, hostName };
  const identityFiles = [...(opts.identityFiles ?? []), ...list(c['identityfile'])].map((f) => expandTokens(f, ctx));
  const agentSocket = agentSocketOf(first(c['identityagent']), opts.sshAuthSock, ctx);
  const { userKnownHostsFiles, globalKnownHostsFiles } = knownHostsFilesOf(c, opts, ctx);
  const strictHostKeyChecking = strictHostKeyCheckingOf(first(c['stricthostkeychecking']));
  const { proxyJump, proxyCommand } = expandJump
    ? proxyRoute(configs, c, opts, { alias, hostName, port, user, file, depth })
    : { proxyJump: [], proxyCommand: undefined };
  const hostKeyAlias = first(c['hostkeyalias']);
  const connectTimeoutMs = seconds(c['connecttimeout'], 'ConnectTimeout', file);
  const serverAliveIntervalMs = seconds(c['serveraliveinterval'], 'ServerAliveInterval', file);
  const countText = first(c['serveralivecountmax']);
  const cipherText = first(c['ciphers']);
  const ciphers = cipherText !== undefined ? parseCiphers(cipherText, `Ciphers for ${alias} (${file})`) : undefined;
  return {
    alias,
    hostName,
    user,
    port,
    identityFiles,
    identitiesOnly: yesNo(c['identitiesonly'], false),
    ...(agentSocket ? { agentSocket } : {}),
    proxyJump,
    ...(proxyCommand ? { proxyCommand } : {}),
    ...(ciphers ? { ciphers } : {}),
    ...(hostKeyAlias ? { hostKeyAlias } : {}),
    userKnownHostsFiles,
    globalKnownHostsFiles,
    strictHostKeyChecking,
    hashKnownHosts: yesNo(c['hashknownhosts'], false),
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...(serverAliveIntervalMs !== undefined ? { serverAliveIntervalMs } : {}),
    ...(countText !== undefined && /^\d+$/.test(countText) ? { serverAliveCountMax: +countText } : {}),
    batchMode: yesNo(c['batchmode'], false),
    pubkeyAuthentication: yesNo(c['pubkeyauthentication'], true),
    passwordAuthentication: yesNo(c['passwordauthentication'], true),
    kbdInteractiveAuthentication: yesNo(c['kbdinteractiveauthentication'] ?? c['challengeresponseauthentication'], true),
    configFiles: configs.map((x) => x.file),
  };
}

/** The port given (user@host:port or -p) wins over Port from -o or the config files; 22 without any. */
function portOf(portText: string | undefined, opts: ResolveOptions, alias: string, file: string): number {
  if (opts.port === undefined && portText !== undefined && !/^\d+$/.test(portText)) {
    throw new PdcError('USAGE', `ssh config ${file}: Port "${portText}" for ${alias} is not a number`);
  }
  return opts.port ?? (portText !== undefined ? +portText : 22);
}

/** IdentityAgent: `none`, `SSH_AUTH_SOCK` (the default socket), `$VARIABLE` or a path with tokens. */
function agentSocketOf(identityAgent: string | undefined, sshAuthSock: string | undefined, ctx: TokenContext): string | undefined {
  let agentSocket: string | undefined = sshAuthSock || undefined;
  if (identityAgent !== undefined) {
    if (identityAgent.toLowerCase() === 'none') agentSocket = undefined;
    else if (identityAgent !== 'SSH_AUTH_SOCK') {
      const v = identityAgent.startsWith('$') ? process.env[identityAgent.slice(1)] : expandTokens(identityAgent, ctx);
      agentSocket = v || undefined;
    }
  }
  return agentSocket;
}

/** UserKnownHostsFile and GlobalKnownHostsFile, else OpenSSH's defaults. */
function knownHostsFilesOf(c: Computed, opts: ResolveOptions, ctx: TokenContext): { userKnownHostsFiles: string[]; globalKnownHostsFiles: string[] } {
  const userKnownHostsFiles = c['userknownhostsfile']
    ? list(c['userknownhostsfile']).map((f) => expandTokens(f, ctx))
    : [join(opts.homeDir, '.ssh', 'known_hosts'), join(opts.homeDir, '.ssh', 'known_hosts2')];
  const sysDir = opts.systemDir ?? '/etc/ssh';
  const globalKnownHostsFiles = c['globalknownhostsfile']
    ? list(c['globalknownhostsfile']).map((f) => expandTokens(f, ctx))
    : [join(sysDir, 'ssh_known_hosts'), join(sysDir, 'ssh_known_hosts2')];
  return { userKnownHostsFiles, globalKnownHostsFiles };
}

function strictHostKeyCheckingOf(value: string | undefined): StrictHostKeyChecking {
  const strictRaw = value?.toLowerCase() ?? 'ask';
  return strictRaw === 'yes' || strictRaw === 'true'
    ? 'yes'
    : strictRaw === 'no' || strictRaw === 'off' || strictRaw === 'false'
      ? 'no'
      : strictRaw === 'accept-new'
        ? 'accept-new'
        : 'ask';
}

/**
 * ProxyCommand, expanded, and the ProxyJump hops, each resolved. The first hop is reached with its
 * own config, including its own ProxyJump or ProxyCommand (as `ssh -J a,b` runs `ssh -J a b`
 * underneath); later hops do not recurse. Hops get their settings from the config files only, not
 * from -i or -o (as with ssh -J).
 */
function proxyRoute(
  configs: Array<{ file: string; config: SSHConfig }>,
  c: Computed,
  opts: ResolveOptions,
  host: { alias: string; hostName: string; port: number; user: string; file: string; depth: number },
): { proxyJump: SshHostConfig[]; proxyCommand: string | undefined } {
  const { alias, file, depth } = host;
  const proxyJump: SshHostConfig[] = [];
  const pj = first(c['proxyjump']);
  const pc = first(c['proxycommand']);
  const proxyCommand =
    pc && pc.toLowerCase() !== 'none' ? expandProxyCommand(pc, { hostName: host.hostName, alias, port: host.port, remoteUser: host.user }) : undefined;
  if (pj && pj.toLowerCase() !== 'none') {
    if (depth >= 8) {
      throw new PdcError('USAGE', `ProxyJump for ${alias} nests too deep (a loop?)`, { hint: `check ProxyJump in ${file}` });
    }
    pj.split(',').forEach((text, i) => {
      const spec = parseJumpSpec(text.trim());
      const hopOpts: ResolveOptions = { ...opts, user: spec.user, port: spec.port, identityFiles: [] };
      const hop = resolveWith(configs, spec.host, hopOpts, depth + 1, i === 0);
      // Later hops are reached through the previous one, never through their own proxy.
      proxyJump.push(...hop.proxyJump, { ...hop, proxyJump: [] });
    });
  }
  return { proxyJump, proxyCommand };
}
