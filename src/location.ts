import { isIPv6 } from 'node:net';
import { PdcError } from './errors/index.js';

/** Where one side of a copy lives, as parsed from a command-line argument. */
export type Location =
  | { kind: 'local'; path: string }
  | {
      kind: 'remote';
      user?: string;
      /** Host name or address as written (an ssh_config alias is resolved later); IPv6 without brackets. */
      host: string;
      port?: number;
      /** Absolute, or relative to the remote home directory, or starting with `~`/`~user` (kept as is: the agent resolves it). */
      path: string;
      /** The argument as the user wrote it, for messages. */
      display: string;
    };

const LOCAL_HINT = 'for a local file whose name contains ":", write it as ./NAME';

function bad(arg: string, why: string, hint?: string): PdcError {
  return new PdcError('BAD_LOCATION', `bad location "${arg}": ${why}`, { hint: hint ?? LOCAL_HINT });
}

/**
 * Parse `[user@]host:path`, `user@[v6addr]:path`, `ssh://[user@]host[:port]/abs/path`
 * or a local path. The rules follow scp/rsync so that users' habits carry over:
 * - starts with `/`, `./` or `../`, or has no colon: local;
 * - a `/` before the first colon: local (`dir/a:b` is a file, not a host);
 * - otherwise the part before the colon is the host.
 */
export function parseLocation(arg: string): Location {
  if (arg === '') throw bad(arg, 'empty', 'name a file, e.g. ./file or host:/path/file');
  if (arg.startsWith('ssh://')) return parseSshUri(arg);
  if (arg.startsWith('/') || arg.startsWith('./') || arg.startsWith('../')) return { kind: 'local', path: arg };

  let user: string | undefined;
  let host: string;
  let path: string;

  // The bracketed IPv6 form: `[addr]:path` or `user@[addr]:path`.
  const v6 = /^(?:([^@[\]/]*)@)?\[([^\]]*)\]:(.*)$/s.exec(arg);
  if (v6) {
    user = v6[1];
    host = v6[2]!;
    path = v6[3]!;
    if (!isIPv6(host)) throw bad(arg, `"[${host}]" is not an IPv6 address`);
  } else {
    const colon = arg.indexOf(':');
    if (colon < 0) return localLiteral(arg);
    const before = arg.slice(0, colon);
    if (before.includes('/')) return localLiteral(arg);
    path = arg.slice(colon + 1);
    // Last '@' splits user from host, as scp does (a user name may itself contain '@').
    const at = before.lastIndexOf('@');
    if (at >= 0) {
      user = before.slice(0, at);
      host = before.slice(at + 1);
    } else {
      host = before;
    }
    if (host === '') throw bad(arg, 'no host before ":"');
    checkHost(arg, host);
  }
  if (user !== undefined) checkUser(arg, user);
  if (path === '') {
    throw bad(arg, 'no file after ":"', `name the remote file, e.g. ${arg}/abs/path or ${arg}relative/to/home`);
  }
  return { kind: 'remote', ...(user !== undefined ? { user } : {}), host, path, display: arg };
}

/**
 * A local path, taken literally. The shell expands an unquoted `~`; one that reaches us
 * was quoted and names a file called `~...`, as for cp. The file service expands a
 * leading `~` (for remote paths), so such a local name is given a leading `./`.
 */
function localLiteral(arg: string): Location {
  return { kind: 'local', path: arg.startsWith('~') ? `./${arg}` : arg };
}

function parseSshUri(arg: string): Location {
  // ssh://[user@]host[:port]/path  or  ssh://[user@][v6addr][:port]/path
  const m = /^ssh:\/\/(?:([^@/]*)@)?(\[[^\]/]*\]|[^:/[\]]*)(?::([^/]*))?(\/.*)?$/s.exec(arg);
  if (!m) throw bad(arg, 'not of the form ssh://[user@]host[:port]/path', 'e.g. ssh://user@host:2222/var/lib/file');
  const rawUser = m[1];
  let host = m[2]!;
  const portText = m[3];
  const rawPath = m[4];
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    if (!isIPv6(host)) throw bad(arg, `"[${host}]" is not an IPv6 address`);
  }
  if (host === '') throw bad(arg, 'no host', 'e.g. ssh://user@host:2222/var/lib/file');
  checkHost(arg, host);
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || +portText < 1 || +portText > 65535) {
      throw bad(arg, `port "${portText}" is not a number from 1 to 65535`, 'e.g. ssh://host:2222/path');
    }
    port = +portText;
  }
  if (rawPath === undefined || rawPath === '/') {
    throw bad(arg, 'no file after the host', 'an ssh:// location needs an absolute path, e.g. ssh://host/var/lib/file');
  }
  // It is a URI, so %XX escapes are decoded (as scp does for scp:// URIs). As in scp,
  // `/~/x` and `/~user/x` are relative to a home directory: the path is `~/x`, `~user/x`.
  const decoded = uriDecode(arg, rawPath);
  const path = decoded.startsWith('/~') ? decoded.slice(1) : decoded;
  const user = rawUser === undefined ? undefined : uriDecode(arg, rawUser);
  if (user !== undefined) checkUser(arg, user);
  return {
    kind: 'remote',
    ...(user !== undefined ? { user } : {}),
    host,
    ...(port !== undefined ? { port } : {}),
    path,
    display: arg,
  };
}

function uriDecode(arg: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad(arg, `invalid %-escape in "${s}"`, 'write a literal % as %25 in ssh:// locations');
  }
}

function checkHost(arg: string, host: string): void {
  // A leading '-' could be taken as an option by tools we hand the name to; whitespace
  // and control characters are never part of a host name.
  if (host.startsWith('-') || /[\s\x00-\x1f\x7f[\]@]/.test(host)) throw bad(arg, `"${host}" is not a valid host name`);
}

function checkUser(arg: string, user: string): void {
  if (user === '' || user.startsWith('-') || /[\s\x00-\x1f\x7f:]/.test(user)) {
    throw bad(arg, `"${user}" is not a valid user name`, 'write user@host:path');
  }
}
