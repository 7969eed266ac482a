import type { RunEvent } from '../../job/events.js';

/** Renders engine and job events; finish() is called once at the end, success or not. */
export interface Renderer {
  event(e: RunEvent): void;
  log(level: number, line: string): void;
  finish(): void;
}

/** Where a renderer writes: process.stderr/stdout, or a string buffer in tests. */
export interface TextSink {
  write(text: string): unknown;
}
