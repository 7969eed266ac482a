/**
 * Why the remote bootstrap command (src/protocol/bootstrap.ts) ended before the agent
 * said hello, from its exit status and stderr. The agent pool calls this when an agent
 * stream ends early; undefined means "no known cause" (the caller reports AGENT_DIED).
 */
import { EXIT_CACHED_NODE_BAD, EXIT_NODE_MISSING, EXIT_NODE_TOO_OLD, MIN_NODE_MAJOR } from '../protocol/bootstrap.js';
import { PdcError } from '../errors/index.js';

/** How to get a node there, per common distribution (the package is nodejs on all of them). */
const INSTALL_NODE =
  `install Node.js ${MIN_NODE_MAJOR} or later there (Debian/Ubuntu: apt install nodejs; RHEL/Rocky/Alma/Fedora: dnf install nodejs; ` +
  'Alpine: apk add nodejs; SUSE: zypper install nodejs; Arch: pacman -S nodejs)';

/** Exit status of `sh -c` when it finds the command but cannot execute it. */
const EXIT_NOT_EXECUTABLE = 126;

export function exitStatusError(code: number | null, stderrText: string, hostDisplay: string): PdcError | undefined {
  const stderr = stderrText.trim();
  const quoted = stderr ? `: ${oneLine(stderr)}` : '';
  // sudo first: its failures exit 1 (or 127 when sudo itself is missing) and say why on stderr.
  if (/sudo: .*password is required|sudo: a terminal is required/i.test(stderr)) {
    return new PdcError('REMOTE_SUDO_FAILED', `sudo on ${hostDisplay} wants a password${quoted}`, {
      hint: `pdiffcopy runs "sudo -n" and never types passwords: allow it without one (NOPASSWD in sudoers) for this user, or connect as the file's owner`,
    });
  }
  if (/is not in the sudoers file|is not allowed to execute|may not run sudo/i.test(stderr)) {
    return new PdcError('REMOTE_SUDO_FAILED', `sudo on ${hostDisplay} refused${quoted}`, {
      hint: 'this user may not run node through sudo there; ask for a sudoers rule (NOPASSWD) or connect as the file owner',
    });
  }
  if (/(^|\s)sudo: (command )?not found|exec: sudo: not found/i.test(stderr)) {
    return new PdcError('REMOTE_SUDO_FAILED', `sudo is not installed on ${hostDisplay}`, {
      hint: 'install sudo there, or connect as the user who owns the file (without --sudo)',
    });
  }
  if (code === EXIT_CACHED_NODE_BAD) {
    return new PdcError('REMOTE_NODE_UPLOAD_FAILED', `the uploaded node on ${hostDisplay} was not run${quoted}`, {
      hint: 'rerun with --upload-node to replace it (it is checked before every use)',
    });
  }
  if (code === EXIT_NODE_TOO_OLD) {
    return new PdcError('REMOTE_NODE_TOO_OLD', `node on ${hostDisplay} is too old${quoted}`, {
      hint: `${INSTALL_NODE}, or point --remote-node PATH at a newer one, or pass --upload-node to send this host's node`,
    });
  }
  // The status can be lost (a channel torn down first); the shell's own words still say it.
  const shellNotFound = code === null && /: (No such file or directory|command not found|not found)$/m.test(stderr);
  if (code === EXIT_NODE_MISSING || shellNotFound || /sudo: .*command not found/i.test(stderr)) {
    return new PdcError('REMOTE_NODE_MISSING', `node not found on ${hostDisplay}${quoted}`, {
      hint: `${INSTALL_NODE}; or pass --remote-node PATH (e.g. a static build from nodejs.org), or --upload-node to send this host's node`,
    });
  }
  if (code === EXIT_NOT_EXECUTABLE) {
    return new PdcError('REMOTE_NODE_MISSING', `node on ${hostDisplay} cannot be executed${quoted}`, {
      hint: 'check the path and permissions given to --remote-node',
    });
  }
  return undefined;
}

function oneLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  const text = lines.slice(-3).join(' | ');
  return text.length > 300 ? text.slice(0, 297) + '...' : text;
}
