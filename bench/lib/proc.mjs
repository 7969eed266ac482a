// Child processes with hard timeouts, plus a synchronous cleanup registry that also runs on
// SIGINT/SIGTERM/uncaught errors, so no namespace, sshd or temp file outlives the benchmark.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';

const live = new Map(); // pid -> ChildProcess (each started in its own process group)
const cleanups = [];
let cleaned = false;

/** Register a synchronous cleanup step; steps run in reverse order of registration. */
export function addCleanup(fn) {
  cleanups.push(fn);
}

/** Kill every child we started (whole process group) and run all cleanup steps once. */
export function runCleanups() {
  if (cleaned) return;
  cleaned = true;
  for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
  live.clear();
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      fn();
    } catch (err) {
      process.stderr.write(`bench: cleanup step failed: ${err?.message ?? err}\n`);
    }
  }
}

export function installSignalHandlers() {
  process.on('exit', runCleanups);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
      runCleanups();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err?.stack ?? err}\n`);
    runCleanups();
    process.exit(2);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: ${err?.stack ?? err}\n`);
    runCleanups();
    process.exit(2);
  });
}

function killGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** Kill one process we started, by id (SIGTERM, then SIGKILL after graceMs). */
export function killPid(pid, graceMs = 2000) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    spawnSync('sleep', ['0.05']);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * Synchronous helper for short setup commands. Throws with stderr on failure unless
 * opts.allowFail; returns { status, stdout, stderr }.
 */
export function sh(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    input: opts.input,
    env: opts.env,
    killSignal: 'SIGKILL',
  });
  const res = { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
  if (!opts.allowFail && (r.error || r.status !== 0)) {
    const why = r.error ? r.error.message : (r.stderr || r.stdout || `exit ${r.status}`).trim();
    throw new Error(`${argv.join(' ')}: ${why}`);
  }
  return res;
}

/** Start a long-lived background process (e.g. sshd); it is killed at cleanup. */
export function startDaemon(argv, { stdio = 'ignore' } = {}) {
  const child = spawn(argv[0], argv.slice(1), { stdio, detached: true });
  live.set(child.pid, child);
  child.on('exit', () => live.delete(child.pid));
  return child;
}

const CAP = 4 << 20;

/**
 * Run argv to completion with a hard timeout (whole process group killed).
 * stdinPath: a file to connect to stdin. Resolves { code, signal, seconds, stdout, stderr, timedOut }.
 * `seconds` is wall time from spawn to process exit (measured with hrtime).
 */
export function run(argv, { timeoutMs = 600_000, stdinFd, cwd, env } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), {
        cwd,
        env,
        detached: true,
        stdio: [stdinFd ?? 'ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      resolve({ code: -1, signal: null, seconds: 0, stdout: '', stderr: String(err?.message ?? err), timedOut: false });
      return;
    }
    live.set(child.pid, child);
    const out = [];
    const errb = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout.on('data', (c) => {
      if (outLen < CAP) out.push(c);
      outLen += c.length;
    });
    child.stderr.on('data', (c) => {
      if (errLen < CAP) errb.push(c);
      errLen += c.length;
    });
    let timedOut = false;
    let exitInfo = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(closeGuard);
      live.delete(child.pid);
      resolve({
        code: exitInfo?.code ?? -1,
        signal: exitInfo?.signal ?? null,
        seconds: exitInfo?.seconds ?? Number(process.hrtime.bigint() - t0) / 1e9,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(errb).toString('utf8'),
        timedOut,
      });
    };
    let closeGuard;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
      // If even that does not produce 'close' (stuck grandchild holding a pipe), give up.
      closeGuard = setTimeout(finish, 5000);
    }, timeoutMs);
    child.on('error', (err) => {
      errb.push(Buffer.from(`${err.message}\n`));
      exitInfo ??= { code: -1, signal: null, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
      finish();
    });
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
      // Leftover grandchildren of a finished tool must not linger into the next run.
      killGroup(child.pid, 'SIGKILL');
      clearTimeout(closeGuard);
      closeGuard = setTimeout(finish, 5000);
    });
    child.on('close', finish);
  });
}

/** First informative stderr line, for `failed: ...` cells. */
export function firstErrorLine(text) {
  const lines = String(text)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .filter((l) => !/^at\s/.test(l) && !/^node:internal/.test(l) && l !== '^' && !/^Node\.js v\d/.test(l));
  const informative = lines.find((l) => /error|fail|denied|cannot|not found|refused|unknown|invalid|no such|usage/i.test(l));
  return (informative ?? lines[0] ?? '').slice(0, 120);
}

/** argv run under GNU time, which writes the peak RSS (KiB) of the largest process of the tree to rssFile. */
export function withPeakRss(argv, rssFile) {
  fs.rmSync(rssFile, { force: true });
  return ['/usr/bin/time', '-f', '%M', '-o', rssFile, ...argv];
}

/** The peak RSS in KiB that withPeakRss's run left in rssFile (NaN when there is none). */
export function peakRssKiB(rssFile) {
  try {
    const nums = fs.readFileSync(rssFile, 'utf8').trim().split('\n').filter((l) => /^\d+$/.test(l.trim()));
    return nums.length ? Number(nums.at(-1)) : NaN;
  } catch {
    return NaN;
  }
}
