import { describe, expect, it } from 'vitest';
import { exitStatusError } from '../../src/ssh/index.js';

describe('exitStatusError', () => {
  const table: Array<[number | null, string, string | undefined, RegExp?]> = [
    [127, 'pdiffcopy: node not found on PATH\n', 'REMOTE_NODE_MISSING', /node not found on db1/],
    [127, 'sh: 1: exec: /opt/node: not found\n', 'REMOTE_NODE_MISSING', /\/opt\/node: not found/],
    [126, 'sh: 1: exec: /etc: Permission denied\n', 'REMOTE_NODE_MISSING', /cannot be executed/],
    [97, 'pdiffcopy: node v10.24.1 is too old, need 12 or later\n', 'REMOTE_NODE_TOO_OLD', /v10\.24\.1 is too old/],
    [1, 'sudo: a password is required\n', 'REMOTE_SUDO_FAILED', /wants a password/],
    [1, 'bob is not in the sudoers file.  This incident will be reported.\n', 'REMOTE_SUDO_FAILED', /refused/],
    [127, 'sh: 1: exec: sudo: not found\n', 'REMOTE_SUDO_FAILED', /sudo is not installed/],
    [1, 'sudo: /opt/node: command not found\n', 'REMOTE_NODE_MISSING', /node not found/],
    [96, 'pdiffcopy: the node cached in /home/u/.cache/pdiffcopy/node-v20.0.0-linux-x64 is missing or failed its checksum or ownership check\n', 'REMOTE_NODE_UPLOAD_FAILED', /uploaded node on db1 was not run/],
    [0, '', undefined],
    [1, 'some agent crash\n', undefined],
    [null, '', undefined],
    // The exit status lost (channel torn down first): the shell's words still name the cause.
    [null, 'bash: line 1: /nonexistent: No such file or directory\n', 'REMOTE_NODE_MISSING', /node not found on db1/],
    [null, 'some agent crash: No such file or directory, open /x\n', undefined],
  ];
  it.each(table)('%s %j -> %s', (code, stderr, expected, message) => {
    const e = exitStatusError(code, stderr, 'db1');
    expect(e?.code).toBe(expected);
    if (e) {
      expect(e.message).toMatch(message!);
      expect(e.hint).toBeTruthy();
      expect(e.exitCode).toBe(6);
    }
  });
  it('hints at NOPASSWD for sudo and at --remote-node for node', () => {
    expect(exitStatusError(1, 'sudo: a password is required', 'db1')?.hint).toContain('NOPASSWD');
    expect(exitStatusError(127, '', 'db1')?.hint).toContain('--remote-node');
  });
  it('a missing node: one hint line naming the package per distribution, --remote-node and --upload-node', () => {
    const hint = exitStatusError(127, 'pdiffcopy: node not found on PATH\n', 'db1')!.hint!;
    expect(hint).not.toContain('\n');
    for (const p of ['apt install nodejs', 'dnf install nodejs', 'apk add nodejs', 'zypper install nodejs', '--remote-node PATH', '--upload-node']) expect(hint).toContain(p);
    expect(exitStatusError(97, 'pdiffcopy: node v10.24.1 is too old, need 12 or later\n', 'db1')!.hint).toContain('--upload-node');
  });
});
