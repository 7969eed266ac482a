import type { SyncEvent } from '../../engine/events.js';

/** Renders engine events; finish() is called once at the end, success or not. */
export interface Renderer {
  event(e: SyncEvent): void;
  log(level: number, line: string): void;
  finish(): void;
}
