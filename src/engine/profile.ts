/**
 * Where one file's time went: wall seconds per step, and for each kind of request how
 * long at least one was in flight (how long the run waited on that side or stage).
 */
export interface RunProfile {
  /** Wall seconds of each step, in order; they add up to the file's time. */
  seconds: {
    /** stat both sides, open, free-space check */
    setup: number;
    /** hashing, comparing and sending, until the last write was answered */
    transfer: number;
    /** resize and fsync */
    fsync: number;
    /** the read-back of refined runs and judging all of it (runs moved whole are read back during the transfer; busy.verify counts both) */
    verify: number;
    /** --verify's whole-file digests */
    digest: number;
    /** final stat of both sides and the commit */
    commit: number;
  };
  /** Seconds during which at least one request of the kind was in flight (`verify`: written blocks read back on the target). */
  busy: { sourceHash: number; targetHash: number; transfer: number; verify: number };
  /** Hash chunks compared (both sides hashed; `inPieces` of them by refinement's first-level pieces) and streamed (sent without hashing the target). */
  chunks: { compared: number; inPieces: number; streamed: number };
}

export type Step = keyof RunProfile['seconds'];
export type Busy = keyof RunProfile['busy'];

/** Collects a RunProfile as the run goes. */
export class Profiler {
  readonly profile: RunProfile = {
    seconds: { setup: 0, transfer: 0, fsync: 0, verify: 0, digest: 0, commit: 0 },
    busy: { sourceHash: 0, targetHash: 0, transfer: 0, verify: 0 },
    chunks: { compared: 0, inPieces: 0, streamed: 0 },
  };
  private last = performance.now();
  private readonly inFlight: Record<Busy, { n: number; since: number }> = {
    sourceHash: { n: 0, since: 0 },
    targetHash: { n: 0, since: 0 },
    transfer: { n: 0, since: 0 },
    verify: { n: 0, since: 0 },
  };

  /** The step that just ended: the time since the previous one ended is added to it. */
  lap(step: Step): void {
    const now = performance.now();
    this.profile.seconds[step] += (now - this.last) / 1000;
    this.last = now;
  }

  /** Run `f`, counting the time it is in flight towards `kind` (overlapping calls count once). */
  async time<T>(kind: Busy, f: () => Promise<T>): Promise<T> {
    const m = this.inFlight[kind];
    if (m.n++ === 0) m.since = performance.now();
    try {
      return await f();
    } finally {
      if (--m.n === 0) this.profile.busy[kind] += (performance.now() - m.since) / 1000;
    }
  }

  /** The profile with every figure rounded to milliseconds. */
  rounded(): RunProfile {
    const r = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));
    const p = this.profile;
    return { seconds: r(p.seconds) as RunProfile['seconds'], busy: r(p.busy) as RunProfile['busy'], chunks: { ...p.chunks } };
  }
}

/** The profile as one line for -v: each step's seconds, then what was waited on during the transfer. */
export function profileText(p: RunProfile): string {
  const s = p.seconds;
  const steps = (Object.keys(s) as Step[]).filter((k) => s[k] > 0 || k === 'transfer').map((k) => `${k} ${s[k].toFixed(2)}`);
  const b = p.busy;
  return (
    `time (s): ${steps.join(', ')}; during transfer: source hashing ${b.sourceHash.toFixed(2)}, target hashing ${b.targetHash.toFixed(2)}, ` +
    `block transfers ${b.transfer.toFixed(2)}, read-back ${b.verify.toFixed(2)}; chunks compared ${p.chunks.compared} (in pieces ${p.chunks.inPieces}), streamed ${p.chunks.streamed}`
  );
}
