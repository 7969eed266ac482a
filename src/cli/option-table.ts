/**
 * Every command-line option, declared once. cac's declarations, `--help`, the
 * README's option tables, the man page and the shell completions are all made
 * from this table (src/cli/docs.ts renders the documents; `npm run docs` writes
 * them and a test checks they are current). RawFlags, the parsed flags that
 * resolveConfig validates, is derived from it too.
 */
import { DEFAULT_HASH_METHOD, LISTED_HASH_METHODS } from '../hash/methods.js';
import { MIN_NODE_MAJOR } from '../protocol/bootstrap.js';
import { DEFAULT_COMPRESS_LEVEL, MAX_COMPRESS_LEVEL, MIN_COMPRESS_LEVEL } from '../protocol/compress.js';
import { DEFAULT_REFINE_LEVELS } from '../engine/refine-plan.js';
import { MIN_FITTED_AGENTS } from '../hosts/agent-host.js';
import { CONNECTION_THREADS_MIN_CORES } from '../ssh/thread-messages.js';
import {
  CONNECTION_THREADS_CHOICES,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CONCURRENCY,
  DEFAULT_IDLE_TIMEOUT_S,
  MAX_BLOCK_SIZE_TEXT,
  MAX_CONCURRENCY,
  MAX_CONNECTIONS,
} from './option-defaults.js';
import { sizeText } from './size.js';

/**
 * - flag: a boolean (`--verify`); a `no-` long name is the negation of an on-by-default setting.
 * - count: a boolean that counts (`-vv`).
 * - value: takes a value; given twice, the last one wins (as in ssh).
 * - list: takes a value and is repeatable; every value is kept, in order.
 */
export type OptionKind = 'flag' | 'count' | 'value' | 'list';

export type OptionGroup = 'copy' | 'ssh' | 'output' | 'benchmark' | 'other';

export interface OptionSpec {
  /** One letter, without the dash. */
  readonly short?: string;
  /** Without the dashes, as typed: `block-size`, `no-progress`. */
  readonly long: string;
  readonly kind: OptionKind;
  /** Name of the value in help and docs (value and list kinds only). */
  readonly value?: string;
  /** One sentence, lower case, no final period. */
  readonly description: string;
  /** What applies when the option is not given, for the docs (resolveConfig applies it). */
  readonly default?: string;
  readonly group: OptionGroup;
  /** What a shell completes for the value: file names, or one of these words. */
  readonly complete?: 'file' | readonly string[];
  /** Declared by cac itself (cli.help / cli.version) rather than as a plain option. */
  readonly builtin?: 'help' | 'version';
}

export const GROUP_TITLES: Record<OptionGroup, string> = {
  copy: 'Copy options',
  ssh: 'SSH options',
  output: 'Output options',
  benchmark: 'Benchmark options',
  other: 'Other options',
};

const MiB = 1024 * 1024;


const DECLARED = [
  {
    short: 'b',
    long: 'block-size',
    kind: 'value',
    value: 'SIZE',
    description: `block size: bytes, or 5K, 1M, 1MiB (K/M/G are binary); 1 B to ${MAX_BLOCK_SIZE_TEXT}`,
    default: `${DEFAULT_BLOCK_SIZE / MiB} MiB`,
    group: 'copy',
  },
  {
    short: 'm',
    long: 'hash-method',
    kind: 'value',
    value: 'NAME',
    description: `block hash: ${LISTED_HASH_METHODS.join(', ')}, or any other node:crypto hash available on both sides`,
    default: DEFAULT_HASH_METHOD,
    complete: LISTED_HASH_METHODS,
    group: 'copy',
  },
  { short: 'W', long: 'whole-file', kind: 'flag', description: 'send every block without comparing (written blocks are still verified)', group: 'copy' },
  {
    short: 'c',
    long: 'concurrency',
    kind: 'value',
    value: 'N',
    description: `parallel hash/transfer streams and the number of remote agent channels (1-${MAX_CONCURRENCY}); when not given, no more agents than the remote host has cores (at least ${MIN_FITTED_AGENTS})`,
    default: String(DEFAULT_CONCURRENCY),
    group: 'copy',
  },
  {
    short: 'n',
    long: 'dry-run',
    kind: 'flag',
    description: 'compare only: print the similarity index (the share of blocks that already match) and what would be sent; never write',
    group: 'copy',
  },
  {
    long: 'no-refine',
    kind: 'flag',
    description: 'send differing blocks whole: do not hash them again in smaller pieces to send only the pieces that differ',
    group: 'copy',
  },
  {
    long: 'refine-levels',
    kind: 'value',
    value: 'SIZES',
    description: 'piece sizes differing blocks are refined at, e.g. 16K,1K,64 (sizes not below the block size, or below 8 digests, are skipped)',
    default: DEFAULT_REFINE_LEVELS.map(sizeText).join(','),
    group: 'copy',
  },
  { long: 'verify', kind: 'flag', description: 'also compare whole-file sha256 digests computed independently on both sides', group: 'copy' },
  {
    long: 'atomic',
    kind: 'flag',
    description: 'build the new version in a temp file beside TARGET and rename it into place when verified (an interrupted run leaves TARGET as it was)',
    group: 'copy',
  },
  { short: 'r', long: 'recursive', kind: 'flag', description: 'copy directories and everything in them (DIR/ copies its contents, DIR the directory itself, as rsync does)', group: 'copy' },
  {
    short: 'a',
    long: 'archive',
    kind: 'flag',
    description: 'archive mode: -r -t --perms, plus --owner --group when run as root (as rsync -a; -p and -o are taken by SSH here)',
    group: 'copy',
  },
  { long: 'perms', kind: 'flag', description: 'give targets the source\'s permission bits (set-id and sticky included), as rsync -p', group: 'copy' },
  { short: 't', long: 'times', kind: 'flag', description: 'give targets the source\'s modification time; files whose size and time already match are skipped (quick check)', group: 'copy' },
  { long: 'owner', kind: 'flag', description: 'give targets the source\'s owner (numeric uid; needs root on the target), as rsync -o', group: 'copy' },
  { short: 'g', long: 'group', kind: 'flag', description: 'give targets the source\'s group (numeric gid), as rsync -g', group: 'copy' },
  {
    long: 'delete',
    kind: 'flag',
    description: 'with -r: delete what is in a synced directory of TARGET but not in the source (only inside the tree; -n lists it)',
    group: 'copy',
  },
  { long: 'checksum', kind: 'flag', description: 'never skip a file by size and time: compare the blocks of every file (rsync -c; here -c is --concurrency)', group: 'copy' },
  {
    long: 'sparse',
    kind: 'flag',
    description:
      'also turn zeros inside an existing target into holes (with util-linux fallocate on the target host; zeros are written where it is missing or the file system cannot). New or grown targets keep holes without it',
    group: 'copy',
  },
  {
    long: 'force-device',
    kind: 'flag',
    description: 'read or write a block device even when it is in use (mounted or held exclusively): it may be inconsistent or corrupt what uses it',
    group: 'copy',
  },
  {
    short: 'z',
    long: 'compress',
    kind: 'flag',
    description: 'compress block data on the wire (brotli, block by block; a block that does not shrink by 5% is sent raw; hash lists never)',
    group: 'copy',
  },
  {
    long: 'compress-level',
    kind: 'value',
    value: 'N',
    description: `brotli quality for -z, ${MIN_COMPRESS_LEVEL} (fastest; not "off" as in rsync) to ${MAX_COMPRESS_LEVEL} (smallest); implies -z`,
    default: String(DEFAULT_COMPRESS_LEVEL),
    group: 'copy',
  },
  {
    long: 'bwlimit',
    kind: 'value',
    value: 'RATE',
    description: 'send block data at most this fast, over all channels together: bytes per second, or 500K, 50M, 1G (binary, as -b; a bare number is bytes, not rsync\'s KiB)',
    group: 'copy',
  },
  {
    long: 'timeout',
    kind: 'value',
    value: 'SECONDS',
    description: 'fail when a side stops answering for this long',
    default: String(DEFAULT_IDLE_TIMEOUT_S),
    group: 'copy',
  },
  { short: 'p', long: 'port', kind: 'value', value: 'PORT', description: 'SSH port', default: 'from ssh_config, else 22', group: 'ssh' },
  { short: 'i', long: 'identity', kind: 'list', value: 'FILE', description: 'SSH private key (repeatable)', complete: 'file', group: 'ssh' },
  { short: 'F', long: 'ssh-config', kind: 'value', value: 'FILE', description: 'SSH client config file', default: '~/.ssh/config', complete: 'file', group: 'ssh' },
  {
    short: 'o',
    long: 'ssh-option',
    kind: 'list',
    value: 'OPTION=VALUE',
    description: 'an ssh_config option for this run, as Key=value or "Key value", like ssh -o (repeatable)',
    group: 'ssh',
  },
  {
    short: 'J',
    long: 'jump',
    kind: 'value',
    value: '[USER@]HOST[:PORT]',
    description: 'connect through this jump host, like ssh -J (several hops separated by commas)',
    group: 'ssh',
  },
  {
    short: 'e',
    long: 'rsh',
    kind: 'value',
    value: 'COMMAND',
    description: 'reach the remote host by running this command (e.g. "ssh -p 2222"), like rsync -e, instead of the built-in SSH client',
    group: 'ssh',
  },
  {
    long: 'connect-timeout',
    kind: 'value',
    value: 'SECONDS',
    description: 'give up connecting after this long (like ConnectTimeout)',
    // The SSH layer's DEFAULT_CONNECT_TIMEOUT_MS (not imported: it would load ssh2 at start-up; a test checks they agree).
    default: 'ConnectTimeout from ssh_config, else 15',
    group: 'ssh',
  },
  {
    long: 'accept-new-host-key',
    kind: 'flag',
    description: 'record an unknown host key in ~/.ssh/known_hosts (like StrictHostKeyChecking=accept-new); a changed key is always refused',
    group: 'ssh',
  },
  { long: 'remote-node', kind: 'value', value: 'PATH', description: 'Node.js binary on the remote host', default: 'node, then nodejs', group: 'ssh' },
  {
    long: 'upload-node',
    kind: 'flag',
    description:
      `when the remote host has no node (or one older than ${MIN_NODE_MAJOR}) and runs this host's OS and CPU, send this node to its ~/.cache/pdiffcopy (sha256-checked before every use) and reuse it next time`,
    group: 'ssh',
  },
  { long: 'sudo', kind: 'flag', description: 'run the remote agent through sudo -n (for files owned by root; needs NOPASSWD)', group: 'ssh' },
  {
    long: 'connections',
    kind: 'value',
    value: 'N',
    description: `SSH connections to spread the agent channels over (1-${MAX_CONNECTIONS})`,
    default: 'chosen from -c',
    group: 'ssh',
  },
  {
    long: 'connection-threads',
    kind: 'value',
    value: 'WHEN',
    description: `run each SSH connection after the first in a thread of its own, so that encryption and socket I/O spread over this host's cores (${CONNECTION_THREADS_CHOICES.join(', ')})`,
    default: `auto: with ${CONNECTION_THREADS_MIN_CORES} or more cores`,
    group: 'ssh',
  },
  { long: 'json', kind: 'flag', description: 'print one JSON object on stdout: the summary, or {ok:false, error:{code,message,hint}}', group: 'output' },
  {
    long: 'progress',
    kind: 'flag',
    description: 'show progress even when stderr is not a terminal: a plain line every few seconds (logs, CI)',
    default: 'a bar on a terminal, nothing otherwise',
    group: 'output',
  },
  { long: 'no-progress', kind: 'flag', description: 'no progress output, not even on a terminal', group: 'output' },
  {
    long: 'json-progress',
    kind: 'flag',
    description: 'print progress as NDJSON on stderr (phase, bytes, rate, ETA), for programs that drive pdiffcopy',
    group: 'output',
  },
  { short: 'v', long: 'verbose', kind: 'count', description: 'more output (repeatable: -vv adds stack traces to errors)', group: 'output' },
  { short: 'q', long: 'quiet', kind: 'count', description: 'less output (repeatable)', group: 'output' },
  {
    short: 'B',
    long: 'benchmark',
    kind: 'value',
    value: 'COUNT',
    description:
      'mutate the local TARGET COUNT times (delta 100/COUNT*i %), resync, compare with rsync --inplace --no-whole-file --ignore-times; asks first unless --yes',
    group: 'benchmark',
  },
  { short: 'y', long: 'yes', kind: 'flag', description: 'do not ask before --benchmark mutates the target', group: 'benchmark' },
  { short: 'h', long: 'help', kind: 'flag', description: 'show this help (options and exit codes)', group: 'other', builtin: 'help' },
  { short: 'V', long: 'version', kind: 'flag', description: 'show the version', group: 'other', builtin: 'version' },
] as const satisfies readonly OptionSpec[];

/** The table, in the order help and docs list it. */
export const OPTIONS: readonly OptionSpec[] = DECLARED;

/** `-b, --block-size` */
export function flagNames(o: OptionSpec): string {
  return [o.short && `-${o.short}`, `--${o.long}`].filter(Boolean).join(', ');
}

/** `-b, --block-size SIZE` */
export function flagsWithValue(o: OptionSpec): string {
  return o.value ? `${flagNames(o)} ${o.value}` : flagNames(o);
}

/** The description with its default, as the docs show it. */
export function describeOption(o: OptionSpec): string {
  return o.default === undefined ? o.description : `${o.description}; default: ${o.default}`;
}

/** The key cac stores an option under: the long name in camelCase, without a `no-` prefix. */
export function keyOf(o: OptionSpec): string {
  return o.long.replace(/^no-/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

type Camel<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;
type KeyOf<L extends string> = Camel<L extends `no-${infer R}` ? R : L>;
/** cac turns numeric-looking values into numbers, and a repeated option into an array. */
type Scalar = string | number;
type ValueOf<K extends OptionKind> = K extends 'flag' ? boolean : K extends 'count' ? boolean | boolean[] : Scalar | Scalar[];

type Declared = Exclude<(typeof DECLARED)[number], { builtin: string }>;

/** The flags as cac hands them to the action, one optional field per declared option. */
export type RawFlags = { [S in Declared as KeyOf<S['long']>]?: ValueOf<S['kind']> };
