import { PdcError } from '../errors/pdc-error.js';
import { DEFAULT_HASH_METHOD } from '../hash/methods.js';
import type { JobOptions, MetaOptions } from '../job/job.js';
import { type Location, parseLocation } from '../location.js';
import { DEFAULT_COMPRESS_LEVEL, MAX_COMPRESS_LEVEL, MIN_COMPRESS_LEVEL } from '../protocol/compress.js';
import { MAX_BLOCK_SIZE } from '../protocol/limits.js';
import { DEFAULT_REFINE_LEVELS } from '../engine/refine-plan.js';
import {
  CONNECTION_THREADS_CHOICES,
  type ConnectionThreads,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CONCURRENCY,
  DEFAULT_IDLE_TIMEOUT_S,
  MAX_BLOCK_SIZE_TEXT,
  MAX_CONCURRENCY,
  MAX_CONNECTIONS,
} from './option-defaults.js';
import type { RawFlags } from './option-table.js';
import { parseSize, sizeText } from './size.js';

export type { RawFlags } from './option-table.js';
export { DEFAULT_BLOCK_SIZE, DEFAULT_CONCURRENCY, DEFAULT_IDLE_TIMEOUT_S, MAX_CONCURRENCY, MAX_CONNECTIONS } from './option-defaults.js';

type Repeatable<T> = T | T[];

export interface SshFlags {
  port?: number;
  identityFiles: string[];
  configFile?: string;
  acceptNewHostKey: boolean;
  remoteNode?: string;
  /** --upload-node (present only when given). */
  uploadNode?: true;
  sudo: boolean;
  connections?: number;
  /** --connection-threads. */
  connectionThreads: ConnectionThreads;
  /** -J as a leading `ProxyJump=...`, then every -o, in the order given (`Key=value` or `Key value`). */
  options: string[];
  /** --connect-timeout. */
  connectTimeoutMs?: number;
}

/** Which metadata targets get from their source (rsync's -p, -t, -o, -g). */
/** The copy options are the job's own (JobOptions); the rest says where, and how to talk and report. */
export interface RunConfig extends JobOptions {
  /** Every SOURCE, in the order given (all on one host). */
  sources: Location[];
  /** The first SOURCE (the only one for a single-file run). */
  source: Location;
  target: Location;
  /** Default 0; each -v adds one, each -q takes one. */
  verbosity: number;
  json: boolean;
  /** auto: a bar when stderr is a terminal; on: also periodic lines when it is not; off: none. */
  progress: 'auto' | 'on' | 'off';
  /** NDJSON progress events on stderr. */
  jsonProgress: boolean;
  /** Fail when a side stops answering for this long. */
  idleTimeoutMs: number;
  ssh: SshFlags;
  /** -e/--rsh: the command that reaches the remote host instead of the built-in SSH client. */
  rsh?: string;
  benchmark?: number;
  yes: boolean;
  /** -z: the brotli level block data is packed with (absent: no compression). */
  compressLevel?: number;
  /** --bwlimit: bytes per second for block data, all channels together. */
  bwlimit?: number;
  /** -c was not given: the remote runs no more agents than it has cores (AgentHostOptions.fitCores). */
  fitAgentsToCores: boolean;
}

function usage(message: string, hint: string): PdcError {
  return new PdcError('USAGE', message, { hint });
}

function count(v: boolean | boolean[] | undefined): number {
  return Array.isArray(v) ? v.filter(Boolean).length : v ? 1 : 0;
}

/** Every value of a repeatable flag, as strings, in the order given. */
function all(v: Repeatable<string | number> | undefined): string[] {
  return v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String);
}

/** An ssh_config option as ssh -o takes it: `Key=value` or `Key value`. */
const SSH_OPTION = /^\s*[A-Za-z][A-Za-z0-9]*\s*(=\s*|\s+)\S/;
/** One -J hop: [user@]host[:port], host possibly a bracketed IPv6 address. */
const JUMP_HOP = /^(?:[^@\s,/]+@)?(?:\[[0-9A-Fa-f:.]+\]|[^@\s,/:[\]]+)(?::\d{1,5})?$/;

function sshOptions(f: RawFlags): string[] {
  const options = all(f.sshOption);
  for (const o of options) {
    if (!SSH_OPTION.test(o)) {
      throw usage(`-o "${o}" is not an ssh_config option`, 'write it as ssh -o takes it: -o Key=value, e.g. -o ServerAliveInterval=5');
    }
  }
  const jump = strFlag(f.jump);
  if (jump === undefined) return options;
  if (!jump.split(',').every((hop) => JUMP_HOP.test(hop))) {
    throw usage(`-J "${jump}" is not a jump host`, 'write it as ssh -J takes it: -J [user@]host[:port], several hops separated by commas');
  }
  return [`ProxyJump=${jump}`, ...options];
}

/** -e/--rsh COMMAND; the built-in client's own options are refused with it (ignored, they would go unnoticed). */
function rshFlag(f: RawFlags): string | undefined {
  const rsh = strFlag(f.rsh);
  if (rsh === undefined) return undefined;
  if (rsh.trim() === '') throw usage('-e/--rsh needs a command', 'name the command that reaches the remote host, e.g. -e "ssh -p 2222"');
  const given = [f.connections !== undefined ? '--connections' : '', f.connectionThreads !== undefined ? '--connection-threads' : ''].filter(Boolean);
  if (given.length > 0) {
    const names = given.join(' and ');
    throw usage(`${names} ${given.length > 1 ? 'apply' : 'applies'} to the built-in SSH client, not to -e/--rsh`, `drop ${names}, or drop -e to use the built-in SSH client`);
  }
  return rsh;
}

/** The last value of a flag given several times. */
function last<T>(v: Repeatable<T> | undefined): T | undefined {
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** A string flag: cac turns numeric-looking values into numbers (`-m 5`, `-F 1`). */
function strFlag(v: Repeatable<string | number> | undefined): string | undefined {
  const s = last(v);
  return s === undefined ? undefined : String(s);
}

function intFlag(raw: Repeatable<string | number> | undefined, name: string, min: number, max: number, code: 'USAGE' | 'BAD_CONCURRENCY' = 'USAGE'): number | undefined {
  const v = last(raw);
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new PdcError(code, `${name} must be a whole number from ${min} to ${max} (got "${v}")`, { hint: `pass ${name} ${min}..${max}` });
  }
  return n;
}

/** SOURCE... TARGET: the sources all on one host, at most one side remote. */
function locations(args: string[]): { sources: Location[]; target: Location } {
  if (args.length < 2) {
    throw usage('SOURCE and TARGET are required', 'usage: pdiffcopy [options] SOURCE... TARGET (see pdiffcopy --help)');
  }
  const sources = args.slice(0, -1).map(parseLocation);
  const target = parseLocation(args[args.length - 1]!);
  const where = (l: Location) => (l.kind === 'local' ? 'local' : `${l.user ?? ''}@${l.host}:${l.port ?? ''}`);
  if (new Set(sources.map(where)).size > 1) {
    throw usage('the sources are on different hosts', 'name sources on one host per run (all local, or all on the same remote host)');
  }
  if (sources[0]!.kind === 'remote' && target.kind === 'remote') {
    throw new PdcError('BOTH_REMOTE', 'SOURCE and TARGET are both remote', {
      hint: 'run pdiffcopy on one of the two hosts, or copy through a local file',
    });
  }
  return { sources, target };
}

/** -a is -r -t --perms, plus --owner --group when run as root (only root may give files away). */
function metaFlags(f: RawFlags, isRoot: boolean): MetaOptions {
  const a = !!f.archive;
  return { perms: a || !!f.perms, times: a || !!f.times, owner: (a && isRoot) || !!f.owner, group: (a && isRoot) || !!f.group };
}

function blockSizeFlag(f: RawFlags): number {
  const text = last(f.blockSize) ?? DEFAULT_BLOCK_SIZE;
  const blockSize = parseSize(text);
  if (!Number.isSafeInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE) {
    throw new PdcError('BAD_BLOCK_SIZE', `block size "${text}" is not valid`, {
      hint: `use a size from 1 byte to ${MAX_BLOCK_SIZE_TEXT}, e.g. -b 4K, -b ${sizeText(DEFAULT_BLOCK_SIZE)} (the default), -b 16MiB`,
    });
  }
  return blockSize;
}

/** -z at the level given (--compress-level implies -z, as in rsync). */
function compressFlag(f: RawFlags): number | undefined {
  const level = intFlag(f.compressLevel, '--compress-level', MIN_COMPRESS_LEVEL, MAX_COMPRESS_LEVEL);
  return level ?? (f.compress ? DEFAULT_COMPRESS_LEVEL : undefined);
}

/** Below this a single block would be a long burst beside the limit: a rate this low is a mistake. */
const MIN_BWLIMIT = 1024;

function bwlimitFlag(f: RawFlags): number | undefined {
  const text = last(f.bwlimit);
  if (text === undefined) return undefined;
  const rate = parseSize(text);
  if (!Number.isSafeInteger(rate) || rate < MIN_BWLIMIT) {
    throw usage(`--bwlimit "${text}" is not a rate of at least 1K`, 'give bytes per second, or with a unit as -b takes it: --bwlimit 500K, --bwlimit 50M');
  }
  return rate;
}

/** --refine-levels SIZES (sizes as -b takes them, separated by commas), or none with --no-refine. */
function refineLevelsFlag(f: RawFlags): number[] {
  if (f.refine === false) return [];
  const text = last(f.refineLevels);
  if (text === undefined) return [...DEFAULT_REFINE_LEVELS];
  const sizes = String(text).split(',').map((t) => parseSize(t.trim()));
  if (sizes.length === 0 || sizes.some((n) => !Number.isSafeInteger(n) || n < 1 || n > MAX_BLOCK_SIZE)) {
    throw new PdcError('BAD_REFINE_LEVELS', `--refine-levels "${text}" is not a list of piece sizes`, {
      hint: `give sizes from 1 byte to ${MAX_BLOCK_SIZE_TEXT} separated by commas, e.g. --refine-levels 16K,1K,64 (or --no-refine)`,
    });
  }
  return sizes;
}

function connectionThreadsFlag(f: RawFlags): ConnectionThreads {
  const v = strFlag(f.connectionThreads)?.trim().toLowerCase() ?? 'auto';
  const choice = CONNECTION_THREADS_CHOICES.find((c) => c === v);
  if (!choice) throw usage(`--connection-threads "${v}" is not one of ${CONNECTION_THREADS_CHOICES.join(', ')}`, 'give --connection-threads auto, always or never');
  return choice;
}

function sshFlags(f: RawFlags): SshFlags {
  const connectTimeoutS = intFlag(f.connectTimeout, '--connect-timeout', 1, 86400);
  return {
    port: intFlag(f.port, '--port', 1, 65535),
    identityFiles: all(f.identity),
    configFile: strFlag(f.sshConfig),
    acceptNewHostKey: !!f.acceptNewHostKey,
    remoteNode: strFlag(f.remoteNode),
    ...(f.uploadNode ? { uploadNode: true as const } : {}),
    sudo: !!f.sudo,
    connections: intFlag(f.connections, '--connections', 1, MAX_CONNECTIONS),
    connectionThreads: connectionThreadsFlag(f),
    options: sshOptions(f),
    connectTimeoutMs: connectTimeoutS === undefined ? undefined : connectTimeoutS * 1000,
  };
}

/** Turn positional arguments and raw flags into a validated RunConfig, or throw a usage error. Pure. */
export function resolveConfig(args: string[], f: RawFlags, isRoot = process.getuid?.() === 0): RunConfig {
  const { sources, target } = locations(args);
  const source = sources[0]!;
  const blockSize = blockSizeFlag(f);
  const concurrency = intFlag(f.concurrency, '--concurrency', 1, MAX_CONCURRENCY, 'BAD_CONCURRENCY') ?? DEFAULT_CONCURRENCY;
  const timeoutS = intFlag(f.timeout, '--timeout', 1, 86400) ?? DEFAULT_IDLE_TIMEOUT_S;
  const benchmark = intFlag(f.benchmark, '--benchmark', 1, 100);
  if (benchmark !== undefined && target.kind !== 'local') {
    throw usage('--benchmark needs a local TARGET (it mutates it)', 'pull from the remote source into a local file: pdiffcopy -B 10 host:file local-copy');
  }
  if (benchmark !== undefined && (sources.length > 1 || f.recursive || f.archive)) {
    throw usage('--benchmark takes one SOURCE file and one TARGET file', 'run the benchmark on one file: pdiffcopy -B 10 SOURCE TARGET');
  }
  if (f.delete && !f.recursive && !f.archive) {
    throw usage('--delete needs -r (or -a)', 'it deletes inside the directories a recursive run syncs: add -r');
  }
  return {
    sources,
    source,
    target,
    recursive: !!f.recursive || !!f.archive,
    meta: metaFlags(f, isRoot),
    checksum: !!f.checksum,
    delete: !!f.delete,
    blockSize,
    hashMethod: (strFlag(f.hashMethod) ?? DEFAULT_HASH_METHOD).trim().toLowerCase(),
    wholeFile: !!f.wholeFile,
    dryRun: !!f.dryRun,
    verify: !!f.verify,
    atomic: !!f.atomic,
    forceDevice: !!f.forceDevice,
    sparse: !!f.sparse,
    refineLevels: refineLevelsFlag(f),
    concurrency,
    fitAgentsToCores: f.concurrency === undefined,
    verbosity: count(f.verbose) - count(f.quiet),
    json: !!f.json,
    progress: f.progress === undefined ? 'auto' : f.progress ? 'on' : 'off',
    jsonProgress: !!f.jsonProgress,
    idleTimeoutMs: timeoutS * 1000,
    ssh: sshFlags(f),
    rsh: rshFlag(f),
    benchmark,
    yes: !!f.yes,
    compressLevel: compressFlag(f),
    bwlimit: bwlimitFlag(f),
  };
}
