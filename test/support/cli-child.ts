/**
 * The built CLI as a child process for fault tests, plus /proc helpers.
 * Unlike test/support/cli.ts (runCli), this keeps a handle on the running child
 * (to signal or kill it mid-transfer), runs it in its own process group, never
 * rejects (a hard timeout SIGKILLs the group and is reported as timedOut), and
 * uses a minimal environment: HOME is a temp dir, no SSH_AUTH_SOCK, no TMPDIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const CLI = join(REPO, 'bin', 'pdiffcopy.js');

export interface CliResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
  /** True when the hard timeout had to kill it. */
  timedOut: boolean;
}

export interface CliOptions {
  /** HOME for the child (keeps the real ~/.ssh out of it). */
  home: string;
  /** Hard limit; the process group is SIGKILLed after it (default 30 s). */
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
  /** Run as this user and group (e.g. 65534, nobody) instead of the test's own. */
  uid?: number;
  gid?: number;
}

export interface RunningCli {
  child: ChildProcess;
  pid: number;
  started: number;
  stderr(): string;
  stdout(): string;
  done: Promise<CliResult>;
  /** SIGKILL the CLI's whole process group (cleanup; safe to call twice). */
  kill(): void;
}

const running = new Set<RunningCli>();

export function spawnCli(args: string[], opts: CliOptions): RunningCli {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.home, LANG: 'C.UTF-8', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: the hard timeout and cleanup take its children (local agents) too.
    detached: true,
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, opts.timeoutMs ?? 30_000);
  const handle: RunningCli = {
    child,
    pid: child.pid!,
    started,
    stderr: () => stderr,
    stdout: () => stdout,
    kill: killGroup,
    done: new Promise((resolveDone) => {
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        running.delete(handle);
        resolveDone({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
      });
    }),
  };
  running.add(handle);
  return handle;
}

export function runCli(args: string[], opts: CliOptions): Promise<CliResult> {
  return spawnCli(args, opts).done;
}

/** Kill every CLI this module started that is still running (afterEach/afterAll). */
export function killAllClis(): void {
  for (const r of [...running]) r.kill();
}

/** The `--json` object on stdout (exactly one non-empty line). */
export function jsonOf(r: CliResult): Record<string, any> {
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  expect(lines, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, any>;
}

/** The `pdiffcopy: error:` line, or a placeholder (for the report table). */
export function errorLine(r: CliResult): string {
  return r.stderr.split('\n').find((l) => l.startsWith('pdiffcopy: error: ')) ?? '(no error line)';
}

/**
 * A clean failure: the given exit code, exactly one `pdiffcopy: error:` line, at
 * most one `pdiffcopy: hint:` line, nothing else on stderr, no stack trace, and
 * not killed by the hard timeout. Returns the error line.
 */
export function expectCleanError(r: CliResult, exitCode: number, pattern?: RegExp): string {
  const ctx = `exit ${r.code} signal ${r.signal} after ${r.ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  expect(r.timedOut, ctx).toBe(false);
  expect(r.code, ctx).toBe(exitCode);
  expect(r.stderr, ctx).not.toMatch(/^\s+at /m);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  const errors = lines.filter((l) => l.startsWith('pdiffcopy: error: '));
  const hints = lines.filter((l) => l.startsWith('pdiffcopy: hint: '));
  expect(errors, ctx).toHaveLength(1);
  expect(hints.length, ctx).toBeLessThanOrEqual(1);
  expect(lines.length, ctx).toBe(errors.length + hints.length);
  if (pattern) expect(errors[0], ctx).toMatch(pattern);
  return errors[0]!;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every `everyMs` until it is truthy or `timeoutMs` passes; returns the last value. */
export async function waitFor<T>(cond: () => T | Promise<T>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v || Date.now() >= deadline) return v;
    await sleep(everyMs);
  }
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  /** Start time in clock ticks since boot. */
  start: number;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state), f[1] ppid, f[19] field 22 (starttime)
    return { pid, ppid: +f[1]!, comm, state: f[0]!, start: +f[19]! };
  } catch {
    return undefined;
  }
}

export function allProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(+name);
    if (p && p.state !== 'Z') out.push(p);
  }
  return out;
}

/** Live descendants of `root` (any command). */
export function descendants(root: number): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of allProcs()) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const walk = (pid: number) => {
    for (const c of byParent.get(pid) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

/** The agent's process title (agent/main.ts; also its comm: exactly 15 characters). */
export const AGENT_TITLE = 'pdiffcopy-agent';

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** Agent processes under `root` (the test sshd's pid, or a CLI's pid for local agents). */
export function agentPids(root: number): number[] {
  return descendants(root)
    .filter((p) => p.comm === AGENT_TITLE || cmdline(p.pid).startsWith(AGENT_TITLE))
    .map((p) => p.pid);
}

/** sshd processes under the listener (per-connection privileged and `sshd: user@notty` ones). */
export function sshdSessionPids(listener: number): number[] {
  return descendants(listener)
    .filter((p) => p.comm === 'sshd')
    .map((p) => p.pid);
}

export function alive(pid: number): boolean {
  const p = readProc(pid);
  return p !== undefined && p.state !== 'Z';
}

/** Threads of a process (the CLI's hash workers are threads). */
export function threadCount(pid: number): number {
  const dir = `/proc/${pid}/task`;
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

/** Send a signal, ignoring "no such process". */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}
