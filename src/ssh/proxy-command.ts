/**
 * ProxyCommand: the user's command that reaches sshd (`ssh -W %h:%p bastion`, `aws ssm
 * start-session ...`, `cloudflared access ssh ...`), run as OpenSSH runs it: through the
 * user's shell ($SHELL, else /bin/sh) as `exec COMMAND`, so no shell lingers between us and
 * the command. The SSH connection is carried over its stdin/stdout; its stderr goes to the
 * log. This is the one place a shell runs a command string: the string comes from the
 * user's own ssh_config or -o, never from paths or other input.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { PdcError } from '../errors/index.js';

export interface ProxyProcess {
  /** The connection's byte stream (ssh2's `sock`). */
  readonly sock: Duplex;
  /** Set once the command has exited; the error explaining that it did. */
  exitError(): PdcError | undefined;
  /** Stop the command (SIGHUP, as ssh does); safe to call twice. */
  kill(): void;
}

const STDERR_TAIL = 400;

export function startProxyCommand(command: string, opts: { display: string; log?: (msg: string) => void }): ProxyProcess {
  const shell = process.env.SHELL || '/bin/sh';
  const child: ChildProcessWithoutNullStreams = spawn(shell, ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let exited: PdcError | undefined;
  let stderrTail = '';
  let killed = false;

  const kill = () => {
    if (killed || child.exitCode !== null || child.signalCode !== null) return;
    killed = true;
    child.kill('SIGHUP');
  };

  const sock = new Duplex({
    read() {
      child.stdout.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      // Writes after the command died are dropped: its exit, not EPIPE, is what to report.
      if (child.stdin.destroyed || !child.stdin.writable) return cb();
      child.stdin.write(chunk, () => cb());
    },
    final(cb) {
      child.stdin.end();
      cb();
    },
    destroy(err, cb) {
      kill();
      cb(err);
    },
  });

  child.stdin.on('error', () => {});
  child.stdout.on('data', (d: Buffer) => {
    // After ssh2 destroyed the stream (connection closed) the command's last output is dropped.
    if (!sock.destroyed && !sock.push(d)) child.stdout.pause();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderrTail = (stderrTail + d).slice(-STDERR_TAIL);
    for (const line of d.split('\n')) if (line.trim()) opts.log?.(`ssh: ProxyCommand: ${line.trimEnd()}`);
  });
  const finish = (status: string) => {
    if (exited) return;
    const last = stderrTail.trim().split('\n').pop()?.trim();
    exited = new PdcError(
      'CONNECTION_PROXY_FAILED',
      `ProxyCommand for ${opts.display} ${status}: ${command}${last ? ` (${last})` : ''}`,
      { hint: 'run the command by hand to see why (it must connect to sshd and print an SSH-2.0 banner); -v shows its output' },
    );
    // The exit is recorded before the stream ends, so whoever sees the end can explain it.
    sock.push(null);
    sock.destroy();
  };
  child.on('error', (err) => finish(`could not be started (${err.message})`));
  child.on('close', (code, signal) => finish(signal ? `was killed by ${signal}` : `exited with status ${code}`));

  return { sock, exitError: () => exited, kill };
}
