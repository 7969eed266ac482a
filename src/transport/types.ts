import type { Readable, Writable } from 'node:stream';

/**
 * One running agent at the far end of a byte stream: a local child process or a
 * remote `node` behind an SSH exec channel. The stdout carries AGENT_MAGIC and then
 * frames; stderr carries the agent's logs only.
 */
export interface AgentProcess {
  /** For logs and errors, e.g. "local#0" or "db1 conn 2/ch 1". */
  readonly label: string;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles when the process (or channel) has gone: exit status or signal if known. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Ends stdin (the agent exits on EOF) and forcibly tears the stream down after a grace period. */
  kill(): void;
  /** Stops an agent that was given no work at once (where the transport can), then as kill(). */
  abort?(): void;
}

/** A way to start agents near one file. */
export interface Transport {
  /** "local" or "user@host:port", for messages. */
  readonly description: string;
  /** Start `count` agents (spread across connections where there are several). */
  spawnAgents(count: number): Promise<AgentProcess[]>;
  /** Close everything this transport opened. Idempotent. */
  close(): Promise<void>;
}
