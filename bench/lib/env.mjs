// Test network + real OpenSSH server for the benchmark.
//
// netns mode (root, `ip netns` works): two fresh network namespaces joined by a veth pair
// (10.213.7.1/30 server, .2 client; that range exists only inside these two namespaces),
// optionally shaped with tbf; sshd runs in the server namespace, every client command is
// wrapped in `ip netns exec <client-ns>`.
// loopback mode (fallback): sshd on 127.0.0.1 with a random free port.
//
// Nothing under ~/.ssh is read or written: keys, known_hosts, sshd_config and ssh_config all
// live in the benchmark's temp directory.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { addCleanup, killPid, run, sh, startDaemon } from './proc.mjs';

const SRV_ADDR = '10.213.7.1';
const CLI_ADDR = '10.213.7.2';
export const HOST_ALIAS = 'bench';

/** `Key value` lines of the Host block the benchmark wrote. */
export function sshConfigValues(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s+(\w+)\s+(.+)$/.exec(line);
    if (m && !(m[1] in out)) out[m[1]] = m[2].trim();
  }
  return out;
}

const REQUIRED = [
  ['ssh', 'openssh-client'],
  ['scp', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['rsync', 'rsync'],
  ['ip', 'iproute2'],
  ['tc', 'iproute2'],
  ['/usr/bin/time', 'time'],
];

function have(cmd) {
  if (cmd.startsWith('/')) return fs.existsSync(cmd);
  return sh(['sh', '-c', `command -v ${cmd}`], { allowFail: true }).status === 0;
}

/** Install missing system tools with apt-get (fresh machine), if we are root. */
export function ensureSystemTools(log) {
  const missing = [...new Set(REQUIRED.filter(([c]) => !have(c)).map(([, p]) => p))];
  if (!missing.length) return;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !have('apt-get')) {
    throw new Error(`missing system packages: ${missing.join(' ')} (install them, e.g. apt-get install -y ${missing.join(' ')})`);
  }
  log(`installing missing system packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const upd = sh(['apt-get', 'update', '-qq'], { allowFail: true, timeoutMs: 300_000, env });
  if (upd.status !== 0) log(`apt-get update failed: ${upd.stderr.trim().split('\n').pop()}`);
  sh(['apt-get', 'install', '-y', '-qq', ...missing], { timeoutMs: 600_000, env });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function killNetnsProcs(ns) {
  const r = sh(['ip', 'netns', 'pids', ns], { allowFail: true });
  const pids = r.stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function deleteNetns(ns) {
  killNetnsProcs(ns);
  sh(['ip', 'netns', 'del', ns], { allowFail: true });
}

/** Remove namespaces left behind by an earlier benchmark that was SIGKILLed (only our own prefix). */
function reapStaleNamespaces(log) {
  const r = sh(['ip', 'netns', 'list'], { allowFail: true });
  for (const line of r.stdout.split('\n')) {
    const m = /^(pdc-bench-(?:srv|cli)-(\d+))\b/.exec(line.trim());
    if (m && Number(m[2]) !== process.pid && !pidAlive(Number(m[2]))) {
      log(`removing stale namespace ${m[1]} from dead benchmark pid ${m[2]}`);
      deleteNetns(m[1]);
    }
  }
}

function trySetupNetns({ srvNs, cliNs, shape, log }) {
  const vS = `pdcs${process.pid}`.slice(0, 15);
  const vC = `pdcc${process.pid}`.slice(0, 15);
  addCleanup(() => deleteNetns(cliNs));
  addCleanup(() => deleteNetns(srvNs));
  sh(['ip', 'netns', 'add', srvNs]);
  sh(['ip', 'netns', 'add', cliNs]);
  const direct = sh(['ip', 'link', 'add', 'name', vS, 'netns', srvNs, 'type', 'veth', 'peer', 'name', vC, 'netns', cliNs], {
    allowFail: true,
  });
  if (direct.status !== 0) {
    // Older iproute2: create in the host namespace, then move both ends immediately.
    sh(['ip', 'link', 'add', vS, 'type', 'veth', 'peer', 'name', vC]);
    sh(['ip', 'link', 'set', vS, 'netns', srvNs]);
    sh(['ip', 'link', 'set', vC, 'netns', cliNs]);
  }
  sh(['ip', '-n', srvNs, 'addr', 'add', `${SRV_ADDR}/30`, 'dev', vS]);
  sh(['ip', '-n', cliNs, 'addr', 'add', `${CLI_ADDR}/30`, 'dev', vC]);
  for (const [ns, dev] of [
    [srvNs, vS],
    [cliNs, vC],
  ]) {
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  }
  let link = 'netns veth pair (unshaped)';
  if (shape) {
    // tbf on both ends shapes both directions (egress of each end).
    for (const [ns, dev] of [
      [srvNs, vS],
      [cliNs, vC],
    ]) {
      sh(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', shape, 'burst', '1mb', 'latency', '50ms']);
    }
    link = `netns veth pair shaped to ${shape} (tbf, both directions)`;
  }
  log(`network namespaces ${srvNs} (${SRV_ADDR}) <-> ${cliNs} (${CLI_ADDR}): ${link}`);
  return link;
}

/**
 * Set everything up. Returns
 * { mode, link, sshConfig, host, user, wrap(argv) -> argv run on the client side, sshdLog }.
 */
export async function setupEnv({ dir, shape, loopback, log }) {
  const isRoot = process.getuid?.() === 0;
  const user = os.userInfo().username;
  const keyDir = path.join(dir, 'ssh');
  fs.mkdirSync(keyDir, { mode: 0o700 });
  const hostKey = path.join(keyDir, 'host_ed25519');
  const clientKey = path.join(keyDir, 'client_ed25519');
  sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'pdc-bench-host', '-f', hostKey]);
  sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'pdc-bench-client', '-f', clientKey]);
  const authKeys = path.join(keyDir, 'authorized_keys');
  fs.copyFileSync(`${clientKey}.pub`, authKeys);
  fs.chmodSync(authKeys, 0o600);

  let mode = 'loopback';
  let link = 'loopback (127.0.0.1)';
  let wrapPrefix = [];
  let srvPrefix = [];
  let addr = '127.0.0.1';
  let port;
  const srvNs = `pdc-bench-srv-${process.pid}`;
  const cliNs = `pdc-bench-cli-${process.pid}`;

  if (!loopback && isRoot && sh(['ip', 'netns', 'list'], { allowFail: true }).status === 0) {
    reapStaleNamespaces(log);
    try {
      link = trySetupNetns({ srvNs, cliNs, shape, log });
      mode = 'netns';
      addr = SRV_ADDR;
      port = 22;
      wrapPrefix = ['ip', 'netns', 'exec', cliNs];
      srvPrefix = ['ip', 'netns', 'exec', srvNs];
    } catch (err) {
      log(`network namespaces unavailable (${err.message.split('\n')[0]}); falling back to loopback`);
      deleteNetns(cliNs);
      deleteNetns(srvNs);
    }
  } else if (!loopback) {
    log(isRoot ? 'ip netns does not work here; using loopback' : 'not root; using sshd on loopback');
  }
  if (mode === 'loopback') {
    if (shape) log(`--shape ${shape} ignored: shaping needs netns mode`);
    port = await freePort();
  }

  // Debian's sshd refuses to start as root without its privilege separation directory.
  if (isRoot && !fs.existsSync('/run/sshd')) fs.mkdirSync('/run/sshd', { mode: 0o755 });

  const sshdConfig = path.join(keyDir, 'sshd_config');
  const pidFile = path.join(keyDir, 'sshd.pid');
  const sftpServer = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server'].find((p) =>
    fs.existsSync(p),
  );
  fs.writeFileSync(
    sshdConfig,
    [
      `ListenAddress ${addr}`,
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authKeys}`,
      `PidFile ${pidFile}`,
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'UseDNS no',
      'PrintMotd no',
      'PrintLastLog no',
      'X11Forwarding no',
      // pdiffcopy opens several connections and channels at once.
      'MaxSessions 64',
      'MaxStartups 100:30:200',
      'LogLevel ERROR',
      // root's ~/.bashrc on these machines runs `pyenv init` (about 1 s per session, more under
      // load), which bash sources for every ssh command. That is not what is measured here:
      // with SHLVL=1 in the session, bash skips it, for every tool alike.
      'SetEnv SHLVL=1',
      `Subsystem sftp ${sftpServer ?? 'internal-sftp'}`,
      '',
    ].join('\n'),
  );
  sh(['/usr/sbin/sshd', '-t', '-f', sshdConfig]);

  const knownHosts = path.join(keyDir, 'known_hosts');
  const hostPub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const names = port === 22 ? [addr, `[${addr}]:22`, HOST_ALIAS] : [`[${addr}]:${port}`, HOST_ALIAS];
  fs.writeFileSync(knownHosts, `${names.join(',')} ${hostPub}\n`);

  const sshConfig = path.join(keyDir, 'ssh_config');
  fs.writeFileSync(
    sshConfig,
    [
      `Host ${HOST_ALIAS}`,
      `  HostName ${addr}`,
      `  Port ${port}`,
      `  User ${isRoot ? 'root' : user}`,
      `  IdentityFile ${clientKey}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  UpdateHostKeys no',
      '  BatchMode yes',
      '  ControlMaster no',
      '  ControlPath none',
      '  Compression no',
      '  ForwardAgent no',
      '  ConnectTimeout 15',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );

  const sshdLog = path.join(keyDir, 'sshd.log');
  const logFd = fs.openSync(sshdLog, 'a');
  const daemon = startDaemon([...srvPrefix, '/usr/sbin/sshd', '-D', '-e', '-f', sshdConfig], { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  addCleanup(() => {
    // Listener first, then any per-connection sshd children still holding sessions.
    killPid(daemon.pid, 1000);
    if (fs.existsSync(pidFile)) {
      const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      if (pid && pid !== daemon.pid) killPid(pid, 500);
    }
  });

  const wrap = (argv) => [...wrapPrefix, ...argv];
  // Wait until a real ssh login works end to end.
  const deadline = Date.now() + 20_000;
  let last = '';
  for (;;) {
    const r = await run(wrap(['ssh', '-F', sshConfig, HOST_ALIAS, 'true']), { timeoutMs: 10_000 });
    if (r.code === 0) break;
    last = r.stderr.trim();
    if (daemon.exitCode !== null || Date.now() > deadline) {
      const slog = fs.existsSync(sshdLog) ? fs.readFileSync(sshdLog, 'utf8').trim() : '';
      throw new Error(`sshd not reachable: ${last}${slog ? `\nsshd log: ${slog}` : ''}`);
    }
    await new Promise((r2) => setTimeout(r2, 200));
  }
  log(`sshd up on ${addr}:${port} (${mode}); ssh config ${sshConfig}`);
  return { mode, link, sshConfig, host: HOST_ALIAS, wrap, sshdLog, srvNs: mode === 'netns' ? srvNs : null, cliNs: mode === 'netns' ? cliNs : null };
}
