// Start-up mode (--startup): where the time goes between `pdiffcopy` starting and the first
// agent answering, for a 4 KiB file that is already up to date (so the run is almost all
// start-up), beside bare baselines measured in the same rounds:
//   node -e 0                      Node's own start
//   node: import ssh2              ... plus loading the SSH library
//   pdiffcopy --version            ... plus the launcher and the CLI's modules
//   ssh HOST true                  the system ssh: connect, kex, auth, a remote shell
//   ssh HOST node -e 0             ... plus starting a remote node
//   ssh2 connect + exec node -e 0  the same with the SSH library pdiffcopy uses
// pdiffcopy itself (push to the sshd, and local to local) reports when each start-up step was
// reached (--json `startup`), with --base-pdiffcopy CMD the build before a change beside it.
// Every command runs once per round, in an order rotated each round; medians of --runs.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HOST_ALIAS, sshConfigValues } from './env.mjs';
import { loadAvg, median } from './table.mjs';

const SMALL = 4096;
const STEPS = ['modules', 'sshReady', 'tcp', 'kex', 'auth', 'exec', 'agent', 'hello', 'opened'];

/** A bare ssh2 client: connect, exec `node -e 0`, wait for the channel to close. Prints ms since process start. */
function bareSsh2Script(cfg) {
  return `
const t = () => performance.now().toFixed(1);
const { Client } = (await import('ssh2')).default;
const loaded = t();
const c = new Client();
c.on('ready', () => {
  const ready = t();
  c.exec('node -e 0', (err, ch) => {
    if (err) throw err;
    ch.on('close', () => { console.log(JSON.stringify({ loaded: +loaded, ready: +ready, done: +t() })); c.end(); }).resume();
  });
}).connect({ host: ${JSON.stringify(cfg.HostName)}, port: ${Number(cfg.Port)}, username: ${JSON.stringify(cfg.User)},
  privateKey: (await import('node:fs')).readFileSync(${JSON.stringify(cfg.IdentityFile)}) });
`;
}

function timed(argv, { env, cwd }) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env, cwd, timeout: 60_000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`);
  return { seconds, stdout: r.stdout };
}

export async function runStartupBench({ opts, env, work, childEnv, repo, log }) {
  const cfg = sshConfigValues(env.sshConfig);
  const src = path.join(work, 'startup-src');
  fs.writeFileSync(src, crypto.randomBytes(SMALL));
  const remoteTarget = path.join(work, 'startup-remote');
  const localTarget = path.join(work, 'startup-local');
  fs.copyFileSync(src, remoteTarget);
  fs.copyFileSync(src, localTarget);
  const ssh = ['ssh', '-F', env.sshConfig, HOST_ALIAS];
  const builds = [['pdiffcopy', opts.pdcCmd]];
  if (opts.basePdcCmd.length) builds.push(['base', opts.basePdcCmd]);

  const commands = [
    { name: 'node -e 0', argv: ['node', '-e', '0'] },
    { name: 'node: import ssh2', argv: ['node', '--input-type=module', '-e', "await import('ssh2')"] },
    { name: 'pdiffcopy --version', argv: [...opts.pdcCmd, '--version'] },
    { name: 'ssh HOST true', argv: env.wrap([...ssh, 'true']) },
    { name: 'ssh HOST node -e 0', argv: env.wrap([...ssh, 'node', '-e', '0']) },
    { name: 'ssh2 connect + exec node -e 0', argv: env.wrap(['node', '--input-type=module', '-e', bareSsh2Script(cfg)]), steps: true },
  ];
  for (const [label, cmd] of builds) {
    commands.push({ name: `${label}: push 4 KiB, up to date`, argv: env.wrap([...cmd, '--json', '-F', env.sshConfig, src, `${HOST_ALIAS}:${remoteTarget}`]), pdc: true });
    commands.push({ name: `${label}: local 4 KiB, up to date`, argv: [...cmd, '--json', src, localTarget], pdc: true });
  }

  const results = new Map(commands.map((c) => [c.name, { wall: [], steps: {} }]));
  const loadBefore = loadAvg();
  for (let round = 0; round < opts.runs; round++) {
    const k = round % commands.length;
    for (const c of [...commands.slice(k), ...commands.slice(0, k)]) {
      const r = timed(c.argv, { env: childEnv, cwd: repo });
      const rec = results.get(c.name);
      rec.wall.push(r.seconds);
      const steps = c.pdc ? JSON.parse(r.stdout).startup : c.steps ? JSON.parse(r.stdout) : undefined;
      for (const [s, v] of Object.entries(steps ?? {})) (rec.steps[s] ??= []).push(c.pdc ? v : v / 1000);
    }
    log(`startup round ${round + 1}/${opts.runs} done (load ${loadAvg()})`);
  }
  const loadAfter = loadAvg();

  const f = (x) => (x === undefined ? '' : x.toFixed(3));
  const lines = [
    `### Start-up, medians of ${opts.runs} (load average ${loadBefore} before, ${loadAfter} after; ${env.link})`,
    '',
    'Seconds since the process started; `wall` is the whole command as the shell sees it.',
    '',
    `| command | wall | ${STEPS.join(' | ')} |`,
    `|---|---:|${STEPS.map(() => '---:').join('|')}|`,
  ];
  for (const c of commands) {
    const rec = results.get(c.name);
    const cells = STEPS.map((s) => f(rec.steps[s] ? median(rec.steps[s]) : undefined));
    if (c.steps) {
      // The bare ssh2 script: loaded -> sshReady, ready -> auth, done -> the remote node ran.
      const m = (k) => (rec.steps[k] ? median(rec.steps[k]) : undefined);
      cells.fill('');
      cells[STEPS.indexOf('sshReady')] = f(m('loaded'));
      cells[STEPS.indexOf('auth')] = f(m('ready'));
      cells[STEPS.indexOf('agent')] = f(m('done'));
    }
    lines.push(`| ${c.name} | ${f(median(rec.wall))} | ${cells.join(' | ')} |`);
  }
  lines.push('');
  return lines.join('\n');
}
