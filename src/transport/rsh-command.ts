/**
 * The `-e, --rsh COMMAND` string and the ssh command line built from it.
 *
 * The COMMAND is split into words the way rsync splits its own `-e` (no shell, no
 * expansion), and the words are run directly: the user's quoting is honoured, nothing
 * else is interpreted.
 */
import { PdcError } from '../errors/index.js';

/**
 * Split an `-e` command into words, as rsync does for its `-e`:
 * - whitespace outside quotes separates words;
 * - single or double quotes keep spaces in a word (`-o "ProxyCommand=ssh -W %h:%p jump"`),
 *   and a quoted part may sit inside a word (`-o'A B'` is `-oA B`);
 * - inside quotes, the quote character doubled stands for itself (`'it''s'` is `it's`);
 * - backslashes, `$`, `~` and globs are plain characters: there is no shell.
 */
export function splitRshCommand(command: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote) {
      if (c !== quote) word += c;
      else if (command[i + 1] === quote) word += command[++i];
      else quote = undefined;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote) throw badRsh(command, `unbalanced ${quote === "'" ? 'single' : 'double'} quote`);
  if (word !== undefined) words.push(word);
  if (words.length === 0 || words[0] === '') throw badRsh(command, 'no program to run');
  return words;
}

function badRsh(command: string, why: string): PdcError {
  return new PdcError('RSH_COMMAND_INVALID', `bad -e/--rsh command ${JSON.stringify(command)}: ${why}`, {
    hint: `write the program and its options, quoting words with spaces, e.g. -e 'ssh -p 2222 -o "ProxyJump=me@gw"'`,
  });
}

export interface RshDestination {
  user?: string;
  host: string;
  port?: number;
}

/**
 * Options every agent's ssh gets, after the user's words. They are what OpenSSH's own
 * scp passes for a data stream: a TTY would mangle the binary protocol, a RemoteCommand
 * from ssh_config would clash with the loader, and forwardings or a LocalCommand from
 * ssh_config would run once per agent. Without a TTY ssh also ignores its escape
 * character, so no byte sequence in the data (`~.`) can end the session. ssh keeps the
 * first value it is given for a `-o` option, so a user's own `-o` in COMMAND still wins.
 */
const STREAM_OPTIONS = ['-x', '-o', 'RequestTTY=no', '-o', 'RemoteCommand=none', '-o', 'ClearAllForwardings=yes', '-o', 'PermitLocalCommand=no'];

/** pdiffcopy's own SSH options, translated for the system ssh. */
export interface SshFlags {
  /** `-o BatchMode=yes`: with no terminal to answer on, a password, passphrase or host key question must fail at once, not wait forever. */
  batchMode: boolean;
  /** -F FILE. */
  configFile?: string;
  /** -i FILE, each. */
  identityFiles?: readonly string[];
  /** `-o StrictHostKeyChecking=accept-new` (ssh refuses a changed key whatever this says). */
  acceptNewHostKey?: boolean;
  /** pdiffcopy's `-o` (and `-J`, as ProxyJump=...), each passed on as `-o OPTION`. */
  options?: readonly string[];
}

/**
 * argv (without the program) for one agent: the user's words, pdiffcopy's own options,
 * the stream options, the port and user of the location (as rsync maps `user@host` to
 * `-l user`), `--` and the host, and the remote command as ONE argument. ssh joins the
 * words after the host with spaces and hands them to the remote user's shell, so the
 * loader command, already quoted for that shell by buildRemoteCommand, must reach ssh
 * unsplit and unchanged.
 */
export function buildSshArgs(words: readonly string[], dest: RshDestination, remoteCommand: string, flags: SshFlags): string[] {
  return [
    ...words.slice(1),
    ...(flags.configFile !== undefined ? ['-F', flags.configFile] : []),
    ...(flags.identityFiles ?? []).flatMap((f) => ['-i', f]),
    ...(flags.acceptNewHostKey ? ['-o', 'StrictHostKeyChecking=accept-new'] : []),
    ...(flags.options ?? []).flatMap((o) => ['-o', o]),
    ...(flags.batchMode ? ['-o', 'BatchMode=yes'] : []),
    ...STREAM_OPTIONS,
    ...(dest.port !== undefined ? ['-p', String(dest.port)] : []),
    ...(dest.user !== undefined ? ['-l', dest.user] : []),
    // Ends ssh's option parsing: neither the host nor anything after it can be read as an option.
    '--',
    dest.host,
    remoteCommand,
  ];
}
