// The tools being compared: how each one is invoked and which file it writes.
import { fileURLToPath } from 'node:url';
import { HOST_ALIAS } from './env.mjs';

export const CIPHER = 'aes128-gcm@openssh.com';
const SSH2_PIPE = fileURLToPath(new URL('./ssh2-pipe.mjs', import.meta.url));

export const TOOLS = {
  push: { label: 'pdiffcopy push', pdc: true, direction: 'push' },
  pull: { label: 'pdiffcopy pull', pdc: true, direction: 'pull' },
  // The same through the system ssh (-e/--rsh): one OpenSSH connection per agent instead of ssh2.
  'push-rsh': { label: 'pdiffcopy push -e ssh', pdc: true, direction: 'push' },
  'pull-rsh': { label: 'pdiffcopy pull -e ssh', pdc: true, direction: 'pull' },
  // -z: compressed block data (compare with push/pull in the same run).
  'push-z': { label: 'pdiffcopy push -z', pdc: true, direction: 'push' },
  'pull-z': { label: 'pdiffcopy pull -z', pdc: true, direction: 'pull' },
  'rsync-inplace': { label: 'rsync --inplace', direction: 'push' },
  rsync: { label: 'rsync (default)', direction: 'push' },
  scp: { label: 'scp', direction: 'push' },
  'ssh-pipe': { label: 'ssh cat pipe', direction: 'push' },
  // Not in the default list: same pipe, but overwriting in place (`cat 1<> target`, no truncate),
  // i.e. without the cost of allocating a brand-new file on the remote filesystem.
  'ssh-pipe-inplace': { label: 'ssh cat pipe (in place)', direction: 'push' },
  // The same, then the data made durable (pdiffcopy fsyncs before it reports success): issue 11's yardstick.
  'ssh-pipe-fsync': { label: 'ssh cat pipe (in place) + fdatasync', direction: 'push' },
  // The same pipe pulling: `ssh host cat source` into the local target in place, then fdatasync.
  'ssh-pull-pipe-fsync': { label: 'ssh cat pipe pulled (in place) + fdatasync', direction: 'pull' },
  // The SSH library alone (ssh2, no pdiffcopy code: lib/ssh2-pipe.mjs), the same pipes: what
  // pdiffcopy's data path costs beyond the library it is built on, measured in the same run.
  'ssh2-pipe-fsync': { label: 'ssh2 pipe (in place) + fdatasync', direction: 'push' },
  'ssh2-pull-pipe-fsync': { label: 'ssh2 pipe pulled (in place) + fdatasync', direction: 'pull' },
  'ssh2-pipe-node-stream': { label: 'ssh2 pipe into node, process.stdin (in place) + fdatasync', direction: 'push' },
  'ssh2-pipe-node-onread': { label: 'ssh2 pipe into node, reused buffer (in place) + fdatasync', direction: 'push' },
};
export const ALL_TOOLS = Object.keys(TOOLS);
export const DEFAULT_TOOLS = ['push', 'pull', 'push-rsh', 'pull-rsh', 'rsync-inplace', 'rsync', 'scp', 'ssh-pipe'];
export const BASELINE = 'rsync-inplace';

/** Split a command string like a (very small) shell: whitespace, '...' and "..." quoting. */
export function splitArgs(text) {
  const out = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(String(text ?? '')))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]));
  return out;
}

function shq(word) {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Build the client-side command for one tool.
 * ctx: { src, remoteTarget, localTarget, sshConfig, pdcCmd: string[], pdcArgs: string[] }
 * Returns { argv, stdinPath?, target } where target is the file to verify afterwards
 * (remote and local paths live on the same filesystem, only the network namespace differs).
 */
export function buildCommand(tool, ctx) {
  const { src, remoteTarget, localTarget, sshConfig } = ctx;
  const sshCmd = `ssh -F ${shq(sshConfig)} -c ${CIPHER}`;
  const remote = (p) => `${HOST_ALIAS}:${p}`;
  switch (tool) {
    case 'push':
      return { argv: [...ctx.pdcCmd, '-F', sshConfig, ...ctx.pdcArgs, '--json', src, remote(remoteTarget)], target: remoteTarget };
    case 'pull':
      return { argv: [...ctx.pdcCmd, '-F', sshConfig, ...ctx.pdcArgs, '--json', remote(src), localTarget], target: localTarget };
    case 'push-z':
      return { argv: [...ctx.pdcCmd, '-F', sshConfig, '-z', ...ctx.pdcArgs, '--json', src, remote(remoteTarget)], target: remoteTarget };
    case 'pull-z':
      return { argv: [...ctx.pdcCmd, '-F', sshConfig, '-z', ...ctx.pdcArgs, '--json', remote(src), localTarget], target: localTarget };
    // The same ssh command as rsync's -e, cipher included, so the two compare like for like.
    case 'push-rsh':
      return { argv: [...ctx.pdcCmd, '-e', sshCmd, ...ctx.pdcArgs, '--json', src, remote(remoteTarget)], target: remoteTarget };
    case 'pull-rsh':
      return { argv: [...ctx.pdcCmd, '-e', sshCmd, ...ctx.pdcArgs, '--json', remote(src), localTarget], target: localTarget };
    case 'rsync-inplace':
      return { argv: ['rsync', '--inplace', '--no-whole-file', '-e', sshCmd, src, remote(remoteTarget)], target: remoteTarget };
    case 'rsync':
      return { argv: ['rsync', '-e', sshCmd, src, remote(remoteTarget)], target: remoteTarget };
    case 'scp':
      return { argv: ['scp', '-q', '-F', sshConfig, '-c', CIPHER, src, remote(remoteTarget)], target: remoteTarget };
    case 'ssh-pipe':
      return {
        argv: ['ssh', '-F', sshConfig, '-c', CIPHER, HOST_ALIAS, `cat > ${shq(remoteTarget)}`],
        stdinPath: src,
        target: remoteTarget,
      };
    case 'ssh-pipe-inplace':
      return {
        argv: ['ssh', '-F', sshConfig, '-c', CIPHER, HOST_ALIAS, `cat 1<> ${shq(remoteTarget)}`],
        stdinPath: src,
        target: remoteTarget,
      };
    case 'ssh-pipe-fsync':
      return {
        argv: ['ssh', '-F', sshConfig, '-c', CIPHER, HOST_ALIAS, `cat 1<> ${shq(remoteTarget)} && sync -d ${shq(remoteTarget)}`],
        stdinPath: src,
        target: remoteTarget,
      };
    case 'ssh-pull-pipe-fsync':
      return {
        argv: ['sh', '-c', `${sshCmd} ${HOST_ALIAS} ${shq(`cat ${shq(src)}`)} 1<> ${shq(localTarget)} && sync -d ${shq(localTarget)}`],
        target: localTarget,
      };
    case 'ssh2-pipe-fsync':
      return { argv: ['node', SSH2_PIPE, sshConfig, 'push', src, remoteTarget], target: remoteTarget };
    case 'ssh2-pull-pipe-fsync':
      return { argv: ['node', SSH2_PIPE, sshConfig, 'pull', src, localTarget], target: localTarget };
    case 'ssh2-pipe-node-stream':
    case 'ssh2-pipe-node-onread':
      return { argv: ['node', SSH2_PIPE, sshConfig, tool.replace('ssh2-pipe-', 'push-'), src, remoteTarget], target: remoteTarget };
    default:
      throw new Error(`unknown tool ${tool}`);
  }
}

/** Parse pdiffcopy's --json summary (last JSON object line on stdout), or null. */
export function parsePdcJson(stdout) {
  const lines = String(stdout).trim().split('\n').reverse();
  for (const line of lines) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      return JSON.parse(t);
    } catch {
      /* keep looking */
    }
  }
  try {
    return JSON.parse(String(stdout));
  } catch {
    return null;
  }
}
