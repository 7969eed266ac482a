/**
 * A real OpenSSH sshd for tests: own temp dir, generated host and client keys,
 * 127.0.0.1 on a random free port, running as the current user (root in CI).
 * Nothing outside the temp dir is read or written except /run/sshd, which sshd
 * insists on for privilege separation. The real ~/.ssh is never touched: tests pass
 * `dir` (or a subdirectory) as the transport's homeDir.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD_BIN = '/usr/sbin/sshd';

export interface StartSshdOptions {
  /** Host key type (default ed25519). */
  hostKeyType?: 'ed25519' | 'ecdsa' | 'rsa';
  /** Extra public keys (file contents) to authorize besides the generated client key. */
  authorizedKeys?: string[];
  /** Extra sshd_config lines. */
  extraConfig?: string;
  /** Environment for sessions (sshd honours only its first SetEnv line, so use this, not extraConfig). */
  setEnv?: Record<string, string>;
  /** Address to listen on (default 127.0.0.1; '::1' for IPv6 tests). */
  listen?: string;
  /** sshd LogLevel (default VERBOSE; DEBUG1 shows forwarded connections). */
  logLevel?: string;
  /**
   * Let bash read the user's ~/.bashrc in sessions, as it does by default when started by
   * sshd. Off by default: this machine's root .bashrc takes about a second (pyenv init),
   * which would dominate every channel; tests must not depend on the host's dotfiles.
   */
  shellRc?: boolean;
}

export interface TestSshd {
  host: string;
  port: number;
  user: string;
  /** Private key (unencrypted ed25519) that this sshd accepts. */
  clientKey: string;
  clientKeyPub: string;
  /** known_hosts with this server's key as `[ADDRESS]:PORT type base64`. */
  knownHosts: string;
  /** ssh_config with `Host pdc-sshd` pointing at this server (HostName, Port, User, IdentityFile, UserKnownHostsFile). */
  sshConfig: string;
  /** Alias defined in sshConfig. */
  alias: string;
  /** `type base64` of the host key (no comment). */
  hostKeyPub: string;
  /** `SHA256:...` as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  dir: string;
  /** PID of the listening sshd (each connection is served by its child processes). */
  pid: number;
  /** PIDs of the per-connection sshd processes (children of `pid`) and their sshd descendants. */
  sessionPids(): number[];
  /** sshd's stderr so far (it runs with -e). */
  log(): string;
  stop(): Promise<void>;
}

function keygen(type: string, file: string, comment: string, passphrase = ''): void {
  const args = ['-q', '-t', type, '-N', passphrase, '-C', comment, '-f', file];
  if (type === 'rsa') args.push('-b', '2048');
  execFileSync('ssh-keygen', args, { stdio: 'ignore' });
}

/** Generate a key pair in `dir` (for tests that need a second, unauthorized or encrypted key). */
export function makeKey(dir: string, name: string, opts: { type?: string; passphrase?: string } = {}): { key: string; pub: string } {
  const key = join(dir, name);
  keygen(opts.type ?? 'ed25519', key, name, opts.passphrase ?? '');
  return { key, pub: readFileSync(`${key}.pub`, 'utf8') };
}

/** `SHA256:...` of a public key file, computed by ssh-keygen (the reference our code must match). */
export function keygenFingerprint(pubFile: string): string {
  const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile], { encoding: 'utf8' });
  return out.split(' ')[1]!;
}

/** A TCP port that was free a moment ago (sshd retries on a new one if it is taken). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function sshdDescendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      // Fields after the parenthesised command: state, ppid, ...
      const ppid = +stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]!;
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== 'sshd') continue;
      children.set(ppid, [...(children.get(ppid) ?? []), +name]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

function setEnvLine(env: Record<string, string>): string {
  const words = Object.entries(env).map(([k, v]) => `"${k}=${v.replace(/["\\]/g, '\\$&')}"`);
  return words.length ? `SetEnv ${words.join(' ')}` : '';
}

/** sshd daemons still running, killed if the test process exits without stop() (a failed or interrupted run). */
const running = new Set<number>();
process.once('exit', () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startSshd(opts: StartSshdOptions = {}): Promise<TestSshd> {
  // sshd refuses to start without its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'pdc-sshd-'));
  const hostKeyType = opts.hostKeyType ?? 'ed25519';
  const hostKey = join(dir, `ssh_host_${hostKeyType}_key`);
  keygen(hostKeyType, hostKey, 'pdc-test-host');
  const client = makeKey(dir, 'client_ed25519');
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, [client.pub, ...(opts.authorizedKeys ?? [])].map((k) => k.trim() + '\n').join(''));
  const hostKeyPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const user = userInfo().username;
  const listen = opts.listen ?? '127.0.0.1';

  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const cfg = join(dir, 'sshd_config');
    writeFileSync(
      cfg,
      [
        `ListenAddress ${listen}`,
        `Port ${port}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        `PidFile ${join(dir, 'sshd.pid')}`,
        `LogLevel ${opts.logLevel ?? 'VERBOSE'}`,
        'PrintMotd no',
        'PrintLastLog no',
        setEnvLine({
          // bash skips ~/.bashrc under sshd when SHLVL says it is not a top-level shell.
          ...(opts.shellRc ? {} : { SHLVL: '1' }),
          ...opts.setEnv,
        }),
        opts.extraConfig ?? '',
        '',
      ].join('\n'),
    );
    let log = '';
    const proc: ChildProcess = spawn(SSHD_BIN, ['-D', '-e', '-f', cfg], {
      stdio: ['ignore', 'ignore', 'pipe'],
      // Own process group, so stop() also ends the per-connection children.
      detached: true,
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    let exited = false;
    running.add(proc.pid!);
    proc.once('exit', () => {
      exited = true;
      running.delete(proc.pid!);
    });

    const deadline = Date.now() + 10_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await canConnect(listen, port)) {
        up = true;
        break;
      }
      await sleep(25);
    }
    if (!up) {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {}
      if (attempt < 3 && /Address already in use|Cannot bind/.test(log)) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`sshd did not start on port ${port}:\n${log}`);
    }

    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[${listen}]:${port} ${hostKeyPub}\n`);
    const alias = 'pdc-sshd';
    const sshConfig = join(dir, 'ssh_config');
    writeFileSync(
      sshConfig,
      [
        `Host ${alias}`,
        `  HostName ${listen}`,
        `  Port ${port}`,
        `  User ${user}`,
        `  IdentityFile ${client.key}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${knownHosts}`,
        '',
      ].join('\n'),
    );

    let stopped: Promise<void> | undefined;
    return {
      host: listen,
      port,
      user,
      clientKey: client.key,
      clientKeyPub: client.pub,
      knownHosts,
      sshConfig,
      alias,
      hostKeyPub,
      hostKeyFingerprint: keygenFingerprint(`${hostKey}.pub`),
      dir,
      pid: proc.pid!,
      sessionPids: () => sshdDescendants(proc.pid!),
      log: () => log,
      stop: () =>
        (stopped ??= (async () => {
          if (!exited) {
            const gone = new Promise<void>((r) => proc.once('exit', () => r()));
            try {
              process.kill(-proc.pid!, 'SIGTERM');
            } catch {}
            await Promise.race([gone, sleep(3000)]);
            if (!exited) {
              try {
                process.kill(-proc.pid!, 'SIGKILL');
              } catch {}
            }
          }
          rmSync(dir, { recursive: true, force: true });
        })()),
    };
  }
}
