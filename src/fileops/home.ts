import { execFile } from 'node:child_process';
import { readFile } from 'node:fs';
import { homedir } from 'node:os';
import type { Role } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';

/**
 * `~` and `~user` at the start of a path, expanded on the host that serves the file,
 * as scp and rsync do on the remote side: `~` is this process's home directory
 * ($HOME, else the password database), `~user` that user's home from the password
 * database (`getent passwd`, which also sees LDAP/NIS users; /etc/passwd when there
 * is no getent). An unknown user is an error, never a literal directory named `~user`.
 * Local command-line paths never reach here with a leading `~` (see location.ts).
 */
export async function expandHome(path: string): Promise<string | undefined> {
  if (!path.startsWith('~')) return path;
  const name = userPart(path);
  const rest = path.slice(1 + name.length);
  const home = name === '' ? homedir() : await homeOf(name);
  if (home === undefined) return undefined;
  return rest === '' ? home : home.replace(/\/+$/, '') + rest;
}

/** The error for a path whose `~user` names no user on this host (expandHome gave undefined). */
export function unknownUserError(path: string, role: Role): PdcError {
  const name = userPart(path);
  return new PdcError(role === 'source' ? 'SOURCE_NOT_FOUND' : 'TARGET_PARENT_MISSING', `${role} ${path}: there is no user "${name}" on this host`, {
    hint: `"~${name}" means that user's home directory: check the user name`,
  });
}

/** `user` in `~user/rest` ('' for `~/rest`). */
function userPart(path: string): string {
  const slash = path.indexOf('/');
  return slash < 0 ? path.slice(1) : path.slice(1, slash);
}

/** A user name as useradd accepts it; all digits would make getent look up a uid instead. */
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;
const GETENT_TIMEOUT_MS = 10_000;

async function homeOf(name: string): Promise<string | undefined> {
  if (!USER_NAME.test(name) || /^\d+$/.test(name)) return undefined;
  const entry = (await getentPasswd(name)) ?? (await etcPasswd(name));
  // name:password:uid:gid:gecos:home:shell
  const fields = entry.split(':');
  return fields.length >= 7 && fields[0] === name && fields[5] ? fields[5] : undefined;
}

/** The passwd line for name; '' when getent says there is none; undefined when there is no getent. */
function getentPasswd(name: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    // An argument array, never a shell; the name was checked above (no leading '-').
    execFile('getent', ['passwd', name], { timeout: GETENT_TIMEOUT_MS }, (err, stdout) => {
      if (err) resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : '');
      else resolve(String(stdout).split('\n')[0]);
    });
  });
}

function etcPasswd(name: string): Promise<string> {
  return new Promise((resolve) => {
    readFile('/etc/passwd', 'utf8', (err, text) => {
      resolve(err ? '' : (text.split('\n').find((line) => line.startsWith(`${name}:`)) ?? ''));
    });
  });
}
