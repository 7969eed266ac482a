/**
 * When the steps of start-up were first reached, in ms since the process started
 * (performance.now()'s origin), for -v's start-up line and --json's `startup`.
 * Start-up happens once per process, so the record is process-wide; the first time a
 * step is reached is the one that counts (later connections and agents do not move it).
 */
export const STARTUP_STEPS = [
  /** Node started and our modules loaded: the run begins. */
  'modules',
  /** The SSH client (ssh2) loaded and ssh_config resolved. */
  'sshReady',
  /** First TCP connection (or ProxyCommand / jump channel) up. */
  'tcp',
  /** First SSH key exchange done (host key checked against known_hosts). */
  'kex',
  /** First connection authenticated. */
  'auth',
  /** First agent command started (exec channel open, or a local child spawned). */
  'exec',
  /** First agent's magic received: the remote node runs our code. */
  'agent',
  /** First agent answered hello: work can start. */
  'hello',
] as const;

export type StartupStep = (typeof STARTUP_STEPS)[number];

const reached = new Map<StartupStep, number>();

/** Record that `step` was reached now, unless it was reached before. */
export function markStartup(step: StartupStep): void {
  if (!reached.has(step)) reached.set(step, performance.now());
}

/** Forget the steps (a new run in the same process, as in tests and --benchmark). */
export function resetStartupMarks(): void {
  reached.clear();
}

/** Seconds since the process started at which each step reached so far was first reached, in order. */
export function startupMarks(): Partial<Record<StartupStep, number>> {
  const out: Partial<Record<StartupStep, number>> = {};
  for (const s of STARTUP_STEPS) {
    const ms = reached.get(s);
    if (ms !== undefined) out[s] = Math.round(ms) / 1000;
  }
  return out;
}
