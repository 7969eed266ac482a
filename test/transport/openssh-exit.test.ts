/**
 * How an ssh that ended before the agent started is explained. The common cases run
 * against the real sshd in openssh.test.ts; these are the ones a loopback test cannot
 * produce (a timeout on the network) or that must fall through, with ssh's own wording.
 */
import { describe, expect, it } from 'vitest';
import { opensshExitError } from '../../src/transport/openssh.js';

describe('opensshExitError', () => {
  it('a TCP timeout is CONNECTION_TIMEOUT quoting ssh', () => {
    const e = opensshExitError(255, 'ssh: connect to host 10.9.9.9 port 22: Connection timed out\r\n', 'db1');
    expect(e).toMatchObject({ code: 'CONNECTION_TIMEOUT', exitCode: 6 });
    expect(e!.message).toBe('timed out connecting to db1: ssh: connect to host 10.9.9.9 port 22: Connection timed out');
  });

  it('any other failure of ssh is CONNECTION_LOST with its last line', () => {
    const e = opensshExitError(255, 'debug: noise\nkex_exchange_identification: Connection closed by remote host\nConnection closed by 10.0.0.2 port 22\n', 'db1');
    expect(e).toMatchObject({ code: 'CONNECTION_LOST', message: 'ssh to db1 failed: Connection closed by 10.0.0.2 port 22' });
    expect(e!.hint).toMatch(/-v/);
  });

  it("other exit statuses are the loader's (node missing, too old, sudo) or unexplained", () => {
    expect(opensshExitError(127, 'pdiffcopy: node not found on PATH\n', 'db1')).toMatchObject({ code: 'REMOTE_NODE_MISSING' });
    expect(opensshExitError(97, 'pdiffcopy: node v10.0.0 is too old, need 12 or later\n', 'db1')).toMatchObject({ code: 'REMOTE_NODE_TOO_OLD' });
    expect(opensshExitError(1, 'sudo: a password is required\n', 'db1')).toMatchObject({ code: 'REMOTE_SUDO_FAILED' });
    // "Permission denied" from the remote side with the remote's exit status is not ssh's authentication.
    expect(opensshExitError(1, 'bash: /x: Permission denied\n', 'db1')).toBeUndefined();
    expect(opensshExitError(null, '', 'db1')).toBeUndefined();
  });
});
