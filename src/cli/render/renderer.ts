import type { SyncEvent } from '../../engine/events.js';

/** Renders engine events; finish() is called once at the end, success or not. */
export interface Renderer {
  event(e: SyncEvent): void;
  log(level: number, line: string): void;
  finish(): void;
}

/** Where a renderer writes: process.stderr/stdout, or a string buffer in tests. */
export interface TextSink {
  write(text: string): unknown;
}
