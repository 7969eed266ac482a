/**
 * --upload-node: when the remote host has no usable node (missing, or older than
 * MIN_NODE_MAJOR) and runs the same OS on the same CPU architecture, the local node
 * binary (process.execPath) is sent to the remote user's cache,
 * `~/.cache/pdiffcopy/node-VERSION-PLATFORM-ARCH/node`, and the agents run with it.
 *
 * Rules this module keeps:
 * - Nothing is uploaded without the flag; a remote whose own node is usable gets nothing.
 * - Every remote command is a constant script; the only words put into it are the
 *   cache name (our version, platform, arch), our sha256 and --remote-node, all shell-quoted.
 * - On the wire the binary is gzip-compressed. The remote writes it to a temp name in the
 *   cache directory (created 0700 without following links; it and its parents must be
 *   ours and closed to others), checks its sha256 and that it runs, and only then renames
 *   it into place. The agent's launch command checks the sha256 again before every use
 *   (buildRemoteCommand's cachedNode), so a binary that is not ours or not the one we sent
 *   is never executed: a corrupted one is replaced by the next run.
 * - The remote needs only POSIX sh and `uname`, `ls`, `mkdir`, `chmod`, `mv`, `rm`,
 *   `gzip` and `sha256sum` (coreutils or busybox): no node, no curl.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { PdcError } from '../errors/index.js';
import { CACHED_NODE_SHELL_TRUSTED, type CachedNode, cachedNodeShellCheck, cachedNodeShellPrelude, MIN_NODE_MAJOR, REMOTE_CACHE_DIR, shellQuote } from '../protocol/bootstrap.js';

/** Runs one remote command (optionally fed `input` on stdin) to its end. */
export interface RemoteRunner {
  run(command: string, input?: Readable): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

export interface LocalNode {
  path: string;
  /** Cache directory name: node-VERSION-PLATFORM-ARCH. */
  name: string;
  sha256: string;
  size: number;
  platform: string;
  arch: string;
}

/** Exit statuses of the upload script (besides the shell's own). */
const EXIT_UNSAFE_DIR = 90;
const EXIT_WRITE_FAILED = 91;
const EXIT_CHECKSUM = 92;
const EXIT_DOES_NOT_RUN = 93;
/** Prefix of the probe's lines, so stray output from a shell start-up file cannot be mistaken for them. */
const PROBE = 'pdiffcopy-probe';
/** gzip level: 1 compresses node's binary to about 40% at over 40 MB/s per core, faster than most links. */
const GZIP_LEVEL = 1;

let localNode: Promise<LocalNode> | undefined;

/** The node binary running this CLI, with its sha256 (computed once per process). */
export function localNodeBinary(path = process.execPath): Promise<LocalNode> {
  return (localNode ??= (async () => {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return {
      path,
      name: `node-${process.version}-${process.platform}-${process.arch}`,
      sha256: hash.digest('hex'),
      size: statSync(path).size,
      platform: process.platform,
      arch: process.arch,
    };
  })());
}

const UNAME_OS: Record<string, string> = { Linux: 'linux', Darwin: 'darwin', FreeBSD: 'freebsd', OpenBSD: 'openbsd', SunOS: 'sunos', AIX: 'aix' };
const UNAME_ARCH: Array<[RegExp, string]> = [
  [/^(x86_64|amd64)$/, 'x64'],
  [/^(aarch64|arm64|armv8.*)$/, 'arm64'],
  [/^arm/, 'arm'],
  [/^i[3-6]86$/, 'ia32'],
  [/^ppc64le$/, 'ppc64'],
  [/^s390x$/, 's390x'],
  [/^riscv64$/, 'riscv64'],
  [/^loongarch64$/, 'loong64'],
];

/** `uname -sm` output ("Linux x86_64") as Node's process.platform and process.arch. */
export function platformOfUname(unameSm: string): { platform: string; arch: string } {
  const [sys = '', machine = ''] = unameSm.trim().split(/\s+/);
  return {
    platform: UNAME_OS[sys] ?? sys.toLowerCase(),
    arch: UNAME_ARCH.find(([re]) => re.test(machine))?.[1] ?? machine,
  };
}

/**
 * What the remote has, one `pdiffcopy-probe KEY VALUE` line each: its `uname -sm`, the
 * node it would run (its version, or none), the tools the upload needs that are missing,
 * and the sha256 of the binary in the cache (only one that passes the ownership and link
 * checks: any other is replaced by an upload, which refuses unsafe directories itself).
 */
export function buildProbeCommand(name: string, nodePath?: string): string {
  const findNode = nodePath
    ? `n=${shellQuote(nodePath)}; `
    : 'n=; for c in node nodejs; do if command -v $c >/dev/null 2>&1; then n=$c; break; fi; done; ';
  return (
    `echo "${PROBE} uname $(uname -sm)"; ` +
    findNode +
    `v=; if [ -n "$n" ]; then v=$("$n" --version 2>/dev/null); fi; echo "${PROBE} node \${v:-none}"; ` +
    `for t in gzip sha256sum; do command -v $t >/dev/null 2>&1 || echo "${PROBE} missing $t"; done; ` +
    cachedNodeShellPrelude(name) +
    `if ${CACHED_NODE_SHELL_TRUSTED} && s=$(sha256sum < "$f" 2>/dev/null); then echo "${PROBE} cached \${s%% *}"; fi`
  );
}

export interface Probe {
  platform: string;
  arch: string;
  uname: string;
  /** Major version of the remote's node, or undefined when there is none that runs. */
  nodeMajor: number | undefined;
  nodeVersion: string | undefined;
  missingTools: string[];
  /** sha256 of the binary in the cache, if any. */
  cachedSha256: string | undefined;
}

export function parseProbe(stdout: string): Probe {
  const probe: Probe = { platform: '', arch: '', uname: '', nodeMajor: undefined, nodeVersion: undefined, missingTools: [], cachedSha256: undefined };
  for (const line of stdout.split('\n')) {
    const m = new RegExp(`^${PROBE} (\\w+) ?(.*)$`).exec(line.trim());
    if (!m) continue;
    const [, key, value = ''] = m;
    if (key === 'uname') Object.assign(probe, platformOfUname(value), { uname: value });
    else if (key === 'node' && /^v?\d+\./.test(value)) {
      probe.nodeVersion = value;
      probe.nodeMajor = parseInt(value.replace(/^v/, ''), 10);
    } else if (key === 'missing') probe.missingTools.push(value);
    else if (key === 'cached' && /^[0-9a-f]{64}$/.test(value)) probe.cachedSha256 = value;
  }
  return probe;
}

/**
 * Reads the gzip stream on stdin into a temp file in the cache directory, checks its
 * sha256 and that it runs (`--version`), then renames it over `node`. The directories are
 * made one at a time with mode 0700 (mkdir does not follow a symlink at the name it
 * creates) and each must then pass `safe`; the temp file is created under noclobber.
 */
export function buildUploadCommand(node: Pick<LocalNode, 'name' | 'sha256'>): string {
  return (
    'umask 077; ' +
    cachedNodeShellPrelude(node.name) +
    `for x in "$HOME/.cache" "$HOME/.cache/pdiffcopy" "$d"; do [ -d "$x" ] || mkdir -m 700 "$x" 2>/dev/null; ` +
    `safe "$x" || { echo "pdiffcopy: $x is not a directory of ours closed to other users" >&2; exit ${EXIT_UNSAFE_DIR}; }; done; ` +
    'chmod 700 "$d" && t="$d/node.tmp.$$" && rm -f "$t" && ' +
    `(set -C; gzip -dc > "$t") || { rm -f "$t"; echo "pdiffcopy: cannot write $t" >&2; exit ${EXIT_WRITE_FAILED}; }; ` +
    `f="$t"; if ! { ${cachedNodeShellCheck(node.sha256)}; }; then rm -f "$t"; echo "pdiffcopy: the received node does not match its sha256" >&2; exit ${EXIT_CHECKSUM}; fi; ` +
    'chmod 700 "$t" || exit 1; ' +
    `if ! v=$("$t" --version 2>&1); then rm -f "$t"; echo "pdiffcopy: the received node does not run here: $v" >&2; exit ${EXIT_DOES_NOT_RUN}; fi; ` +
    'mv -f "$t" "$d/node"'
  );
}

export interface PrepareOptions {
  /** user@host, for messages. */
  display: string;
  /** --remote-node: the node to probe first. */
  remoteNode?: string;
  log: (msg: string) => void;
  /** The binary to send (default: this process's node). */
  local?: LocalNode;
}

/**
 * The node the agents should run on the remote: undefined when the remote's own is
 * usable, else the cached upload (reused when its checksum matches, sent otherwise).
 */
export async function prepareRemoteNode(runner: RemoteRunner, opts: PrepareOptions): Promise<CachedNode | undefined> {
  const local = opts.local ?? (await localNodeBinary());
  const probe = await probeRemote(runner, local, opts);
  if (probe.nodeMajor !== undefined && probe.nodeMajor >= MIN_NODE_MAJOR) {
    opts.log(`node: ${opts.display} has node ${probe.nodeVersion}: nothing to upload`);
    return undefined;
  }
  checkUploadPossible(probe, local, opts.display);
  const where = `${opts.display}:~/.cache/pdiffcopy/${local.name}/node`;
  if (probe.cachedSha256 === local.sha256) {
    opts.log(`node: reusing ${where} (sha256 matches)`);
  } else {
    opts.log(`node: uploading ${local.path} (${process.version}, ${Math.round(local.size / 2 ** 20)} MiB, gzip) to ${where}${probe.cachedSha256 ? ' (the cached one does not match)' : ''}`);
    await upload(runner, local, opts.display);
  }
  return { name: local.name, sha256: local.sha256 };
}

async function probeRemote(runner: RemoteRunner, local: LocalNode, opts: PrepareOptions): Promise<Probe> {
  const r = await runner.run(buildProbeCommand(local.name, opts.remoteNode));
  const probe = parseProbe(r.stdout);
  if (!probe.uname) {
    throw new PdcError('REMOTE_NODE_UPLOAD_FAILED', `cannot tell what system ${opts.display} runs (uname -sm): ${lastLine(r.stderr) || `exit status ${r.code}`}`, {
      hint: '--upload-node needs a POSIX sh with uname on the remote; install Node.js there instead',
    });
  }
  return probe;
}

/** Same OS and CPU architecture, and the tools the upload script uses. */
function checkUploadPossible(probe: Probe, local: LocalNode, display: string): void {
  if (probe.platform !== local.platform || probe.arch !== local.arch) {
    throw new PdcError('REMOTE_PLATFORM_MISMATCH', `${display} runs ${probe.uname} (${probe.platform}-${probe.arch}): this node is ${local.platform}-${local.arch}, so --upload-node cannot send it`, {
      hint: `install Node.js ${MIN_NODE_MAJOR} or later there, or copy a ${probe.platform}-${probe.arch} node binary there and pass --remote-node PATH`,
    });
  }
  if (probe.missingTools.length) {
    throw new PdcError('REMOTE_NODE_UPLOAD_FAILED', `cannot upload node to ${display}: ${probe.missingTools.join(' and ')} not found there`, {
      hint: `--upload-node needs gzip and sha256sum (coreutils or busybox) on the remote; install them, or install Node.js ${MIN_NODE_MAJOR} or later there`,
    });
  }
}

async function upload(runner: RemoteRunner, local: LocalNode, display: string): Promise<void> {
  const input = createReadStream(local.path).pipe(createGzip({ level: GZIP_LEVEL }));
  const r = await runner.run(buildUploadCommand(local), input);
  if (r.code === 0) return;
  const why = lastLine(r.stderr).replace(/^pdiffcopy: /, '') || `exit status ${r.code}`;
  throw new PdcError('REMOTE_NODE_UPLOAD_FAILED', `cannot upload node to ${display}: ${why}`, {
    hint:
      r.code === EXIT_DOES_NOT_RUN
        ? `this node binary needs libraries the remote lacks (musl vs glibc?): install Node.js ${MIN_NODE_MAJOR} or later there, or pass --remote-node PATH to a static build`
        : r.code === EXIT_UNSAFE_DIR
          ? `make ${REMOTE_CACHE_DIR.replace('"$HOME"', '~')} a directory of the remote user with mode 0700, or install Node.js there`
          : 'check free space and permissions in ~/.cache on the remote, or install Node.js there',
  });
}

function lastLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines[lines.length - 1] ?? '';
  return line.length > 300 ? line.slice(0, 297) + '...' : line;
}
