import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/pdiffcopy.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunCliOptions {
  /** HOME for the run (tests pass a temp dir so the real ~/.ssh is never read). */
  home?: string;
  env?: NodeJS.ProcessEnv;
  /** Hard limit: the process is killed and the test fails rather than hang. */
  timeoutMs?: number;
  /** Called once the process is spawned (to signal it, for instance). */
  onSpawn?: (pid: number) => void;
}

/** Run `node bin/pdiffcopy.js ...args` as a child process; never hangs past timeoutMs. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(opts.home ? { HOME: opts.home } : {}), SSH_AUTH_SOCK: '', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pdiffcopy ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 60_000} ms\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    if (child.pid) opts.onSpawn?.(child.pid);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The error lines a failed run printed: exactly one error line, maybe a hint, never a stack. */
export function errorLines(r: CliResult): { error: string; hint?: string; other: string[] } {
  const lines = r.stderr.split('\n').filter(Boolean);
  const error = lines.filter((l) => l.startsWith('pdiffcopy: error: '));
  const hint = lines.find((l) => l.startsWith('pdiffcopy: hint: '));
  if (error.length !== 1) throw new Error(`expected one error line, got ${error.length}: ${r.stderr}`);
  return { error: error[0]!, hint, other: lines.filter((l) => !l.startsWith('pdiffcopy: error: ') && !l.startsWith('pdiffcopy: hint: ')) };
}
