/**
 * Shared set-up for the fault matrix: one real sshd per test file, a temp
 * dir, a seeded source big enough that a run over SSH lasts several seconds on a
 * 2-core box, progress polling on the target, and the outcome table for the report.
 */
import { statSync } from 'node:fs';
import { expect } from 'vitest';
import { agentPids, alive, type CliResult, errorLine, type RunningCli, sleep, waitFor } from '../support/cli-child.js';

/** Bytes actually allocated for a file (a target being filled at scattered offsets), 0 if missing. */
export function allocated(path: string): number {
  try {
    return statSync(path).blocks * 512;
  } catch {
    return 0;
  }
}

/**
 * Wait until `path` has at least `bytes` allocated while `run` is still going; fails
 * the test (with what was seen and the run's output) when the run ended or
 * `timeoutMs` passed first.
 */
export async function waitForProgress(path: string, bytes: number, timeoutMs: number, run: RunningCli): Promise<void> {
  const going = () => run.child.exitCode === null && run.child.signalCode === null;
  await waitFor(() => allocated(path) >= bytes || !going(), timeoutMs, 25);
  const got = allocated(path);
  expect(got >= bytes && going(), `progress on ${path}: ${got} of ${bytes} bytes; run still going: ${going()}; its stderr: ${run.stderr()}`).toBe(true);
}

/** Wait until agents appear under `root` (the sshd listener, or the CLI for local agents). */
export async function waitForAgents(root: number, count: number, timeoutMs = 15_000): Promise<number[]> {
  const pids = await waitFor(() => {
    const p = agentPids(root);
    return p.length >= count ? p : undefined;
  }, timeoutMs, 50);
  expect(pids?.length ?? 0, `agents under ${root}`).toBeGreaterThanOrEqual(count);
  return pids!;
}

/** Every one of `pids` is gone within `timeoutMs`; returns how long it took. */
export async function expectAllGone(pids: number[], timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await waitFor(() => pids.every((p) => !alive(p)), timeoutMs, 50);
  const left = pids.filter((p) => alive(p));
  expect(left, `processes still alive after ${timeoutMs} ms`).toEqual([]);
  return Date.now() - t0;
}

/** Rows for the report table: | case | exit | time-to-fail ms | error line |. */
export class OutcomeTable {
  private readonly rows: string[] = [];
  constructor(private readonly title: string) {}
  add(label: string, r: CliResult, ms = r.ms): void {
    const line = r.code === 0 ? `(ok${r.stdout.includes('"bytesSent"') ? `, bytesSent ${/"bytesSent":(\d+)/.exec(r.stdout)?.[1]}` : ''})` : errorLine(r);
    this.rows.push(`| ${label} | ${r.code ?? r.signal} | ${ms} | ${line} |`);
  }
  print(): void {
    if (this.rows.length) console.log([`${this.title} (case | exit | ms | error line):`, ...this.rows].join('\n'));
  }
}

export { sleep };
