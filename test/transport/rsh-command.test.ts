/**
 * The -e/--rsh COMMAND: word splitting (rsync's rules, no shell) and the ssh argv
 * built from it. That the argv really works is shown against a real sshd in
 * openssh.test.ts; here are the exact words.
 */
import { describe, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/index.js';
import { buildRemoteCommand } from '../../src/protocol/bootstrap.js';
import { buildSshArgs, splitRshCommand } from '../../src/transport/rsh-command.js';

function splitError(cmd: string): PdcError {
  try {
    splitRshCommand(cmd);
  } catch (e) {
    if (e instanceof PdcError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(cmd)} to be refused`);
}

describe('splitRshCommand', () => {
  it.each([
    ['ssh', ['ssh']],
    ['  ssh   -p 2222\t-v ', ['ssh', '-p', '2222', '-v']],
    [`ssh -o 'ProxyCommand=ssh -W %h:%p gw'`, ['ssh', '-o', 'ProxyCommand=ssh -W %h:%p gw']],
    [`ssh -o "User=a b" -F "/tmp/my dir/cfg"`, ['ssh', '-o', 'User=a b', '-F', '/tmp/my dir/cfg']],
    // A quoted part inside a word joins it, as in a shell.
    [`ssh -o'SetEnv=X=a b'x`, ['ssh', '-oSetEnv=X=a bx']],
    // Inside quotes the quote doubled stands for itself (rsync's rule); the other quote is plain.
    [`ssh -o 'A=it''s' -o "B=say ""hi"" 'x'"`, ['ssh', '-o', "A=it's", '-o', `B=say "hi" 'x'`]],
    // Empty quotes are an (empty) word.
    [`ssh '' -v`, ['ssh', '', '-v']],
    // No shell: backslashes, $, ~, globs and ; are plain characters.
    ['ssh -i ~/k$HOME\\n *; rm', ['ssh', '-i', '~/k$HOME\\n', '*;', 'rm']],
  ])('%s', (cmd, words) => {
    expect(splitRshCommand(cmd)).toEqual(words);
  });

  it.each([`ssh -o 'A=b`, 'ssh -o "A=b', '', '   ', "'' -v"])('refuses %j with RSH_COMMAND_INVALID (exit 2)', (cmd) => {
    const e = splitError(cmd);
    expect(e.code).toBe('RSH_COMMAND_INVALID');
    expect(e.exitCode).toBe(2);
    expect(e.hint).toMatch(/-e '/);
  });
});

describe('buildSshArgs', () => {
  const loader = buildRemoteCommand();

  it('maps user and port to -l and -p, ends options with --, and passes the loader as ONE last word', () => {
    const args = buildSshArgs(['ssh', '-F', '/c f'], { user: 'bob', host: 'db1', port: 2222 }, loader, { batchMode: true });
    expect(args.slice(0, 2)).toEqual(['-F', '/c f']);
    const dd = args.indexOf('--');
    expect(args.slice(dd - 4)).toEqual(['-p', '2222', '-l', 'bob', '--', 'db1', loader]);
    expect(args).toContain('BatchMode=yes');
    expect(args[args.indexOf('BatchMode=yes') - 1]).toBe('-o');
    // The user's words come first: ssh keeps the first value of a -o option, so theirs win.
    expect(args.indexOf('-F')).toBeLessThan(args.indexOf('BatchMode=yes'));
  });

  it('leaves out what the location does not say, and BatchMode when a terminal can answer', () => {
    const args = buildSshArgs(['ssh'], { host: 'db1' }, loader, { batchMode: false });
    expect(args).not.toContain('-p');
    expect(args).not.toContain('-l');
    expect(args).not.toContain('BatchMode=yes');
    expect(args.slice(-3)).toEqual(['--', 'db1', loader]);
    // A data stream needs no TTY, and ssh_config's RemoteCommand must not replace the loader.
    expect(args).toEqual(expect.arrayContaining(['RequestTTY=no', 'RemoteCommand=none']));
  });

  it("translates pdiffcopy's -F, -i and --accept-new-host-key, after the user's words", () => {
    const args = buildSshArgs(['ssh', '-o', 'StrictHostKeyChecking=no'], { host: 'db1' }, loader, {
      batchMode: true,
      configFile: '/etc/my cfg',
      identityFiles: ['/k1', '/k 2'],
      acceptNewHostKey: true,
    });
    expect(args.slice(0, 12)).toEqual([
      '-o', 'StrictHostKeyChecking=no',
      '-F', '/etc/my cfg',
      '-i', '/k1',
      '-i', '/k 2',
      '-o', 'StrictHostKeyChecking=accept-new',
      '-o', 'BatchMode=yes',
    ]);
  });
});
