/**
 * How an agent starts on the far side of a stream, shared by the local and SSH transports.
 *
 * 1. The agent writes AGENT_MAGIC on stdout before anything else. Bytes that arrive
 *    before it (a login shell's banner, .bashrc echoes) mean the stream is not clean.
 * 2. Over SSH nothing is written to the remote disk: the remote command is a short
 *    `node -e LOADER` whose loader reads a 4-byte big-endian length plus the agent's
 *    code from stdin, runs it, and leaves the rest of stdin to the agent.
 *    The loader is a constant: user input never enters the remote command line
 *    except --remote-node, which is shell-quoted.
 * 3. With --upload-node the one exception to 2: a node binary of ours in the remote user's
 *    cache (src/transport/node-upload.ts), which the command checks before running it.
 */
export const AGENT_MAGIC = Buffer.from('\x00PDIFFCOPY-AGENT-1\n', 'latin1');

/** Exit status the loader uses when the remote node is older than MIN_NODE_MAJOR. */
export const EXIT_NODE_TOO_OLD = 97;
export const MIN_NODE_MAJOR = 12;

/**
 * ES5 on purpose: it must at least run far enough on an ancient node to say it is too old.
 * It reads exactly the length and the code from descriptor 0, with blocking reads, so that
 * not a byte more is taken: the agent then reads its requests from descriptor 0 itself
 * (agent/stdin.ts). A descriptor left non-blocking answers EAGAIN: wait a millisecond, again.
 */
export const LOADER_SOURCE = [
  'var v=process.versions.node.split(".")[0]|0;',
  `if(v<${MIN_NODE_MAJOR}){process.stderr.write("pdiffcopy: node "+process.version+" is too old, need ${MIN_NODE_MAJOR} or later\\n");process.exit(${EXIT_NODE_TOO_OLD});}`,
  'var fs=require("fs"),nap=new Int32Array(new SharedArrayBuffer(4));',
  'function take(n){var b=Buffer.alloc(n),o=0,k;while(o<n){',
  'try{k=fs.readSync(0,b,o,n-o,null);}catch(e){if(e.code==="EAGAIN"){Atomics.wait(nap,0,0,1);continue;}throw e;}',
  'if(k===0){process.stderr.write("pdiffcopy: the agent code was cut short\\n");process.exit(2);}o+=k;}return b;}',
  'var code=take(take(4).readUInt32BE(0)).toString("utf8");',
  'var m={exports:{}};(new Function("require","module","exports","__filename","__dirname",code))(require,m,m.exports,"pdiffcopy-agent.js",process.cwd());',
].join('');

/** POSIX shell single-quoting. Every user-influenced word in a remote command goes through this. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_\/.,:=@%+-]+$/.test(word)) return word;
  return "'" + word.replace(/'/g, "'\\''") + "'";
}

/**
 * A node binary that --upload-node put in the remote user's cache (src/transport/node-upload.ts):
 * `~/.cache/pdiffcopy/NAME/node`, whose sha256 must be SHA256 every time it is run.
 */
export interface CachedNode {
  /** Directory name under ~/.cache/pdiffcopy, e.g. node-v20.20.2-linux-x64. */
  name: string;
  /** Hex sha256 of the binary. */
  sha256: string;
}

export interface RemoteCommandOptions {
  /** Explicit node binary (--remote-node). Otherwise `node`, then `nodejs`. */
  nodePath?: string;
  /** Run the node uploaded by --upload-node (wins over nodePath). */
  cachedNode?: CachedNode;
  /** Run through `sudo -n` (never prompts; fails if a password is needed). */
  sudo?: boolean;
}

/** Exit status of the remote command when neither node nor nodejs is on PATH. */
export const EXIT_NODE_MISSING = 127;
/** Exit status of the remote command when the cached node is missing or fails its checks. */
export const EXIT_CACHED_NODE_BAD = 96;

/** Directory of pdiffcopy's per-user cache on the remote, as a shell word (expanded there). */
export const REMOTE_CACHE_DIR = '"$HOME"/.cache/pdiffcopy';

/**
 * sh that sets `d` to the cached node's directory and `f` to the binary, and defines
 * `safe DIR` (true for a real directory, not a symlink, owned by us, with no group or
 * other write bit). The name is ours (version, platform, arch) but quoted all the same.
 */
export function cachedNodeShellPrelude(name: string): string {
  return (
    `d=${REMOTE_CACHE_DIR}/${shellQuote(name)}; f="$d/node"; ` +
    'safe() { [ -d "$1" ] && [ ! -L "$1" ] && [ -O "$1" ] && case "$(ls -ld "$1")" in d????w*|d???????w*) return 1;; esac; }; '
  );
}

/** sh that is true when the cached binary is a regular file we own, not a symlink, in directories that are ours and closed to others. */
export const CACHED_NODE_SHELL_TRUSTED =
  'safe "$HOME/.cache" && safe "$HOME/.cache/pdiffcopy" && safe "$d" && [ -f "$f" ] && [ ! -L "$f" ] && [ -O "$f" ]';

/** sh that is true only when the cached binary is trusted (above) and its sha256 is the expected one; leaves the digest line in `s`. */
export function cachedNodeShellCheck(sha256: string): string {
  return `${CACHED_NODE_SHELL_TRUSTED} && s=$(sha256sum < "$f") && [ "\${s%% *}" = ${shellQuote(sha256)} ]`;
}

export function buildRemoteCommand(opts: RemoteCommandOptions = {}): string {
  const loader = shellQuote(LOADER_SOURCE);
  const sudo = opts.sudo ? 'sudo -n ' : '';
  if (opts.cachedNode) {
    // Checked before every use: a binary that is not ours or not the one we sent never runs.
    return (
      cachedNodeShellPrelude(opts.cachedNode.name) +
      `if ${cachedNodeShellCheck(opts.cachedNode.sha256)}; then exec ${sudo}"$f" -e ${loader}; fi; ` +
      `echo "pdiffcopy: the node cached in $d is missing or failed its checksum or ownership check" >&2; exit ${EXIT_CACHED_NODE_BAD}`
    );
  }
  if (opts.nodePath) return `exec ${sudo}${shellQuote(opts.nodePath)} -e ${loader}`;
  // `command -v` is POSIX; pick the first node-ish binary and exec it.
  return (
    'if command -v node >/dev/null 2>&1; then n=node; ' +
    'elif command -v nodejs >/dev/null 2>&1; then n=nodejs; ' +
    `else echo "pdiffcopy: node not found on PATH" >&2; exit ${EXIT_NODE_MISSING}; fi; ` +
    `exec ${sudo}"$(command -v $n)" -e ${loader}`
  );
}

/** What the SSH transport writes to the channel's stdin right after exec. */
export function encodeAgentPayload(code: Buffer): Buffer {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(code.length, 0);
  return Buffer.concat([header, code]);
}
