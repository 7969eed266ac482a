/**
 * What the engine tells the world. It never prints: the progress bar, the plain
 * log and `--json` are renderers of these events.
 */
import type { RunProfile } from './profile.js';

/** digesting: --verify's whole-file sha256 on both sides, after the written blocks were verified. */
export type Phase = 'connecting' | 'syncing' | 'finishing' | 'verifying' | 'digesting' | 'done';

export interface SyncSummary {
  source: string;
  target: string;
  dryRun: boolean;
  wholeFile: boolean;
  hashMethod: string;
  blockSize: number;
  bytesTotal: number;
  /** Bytes of block data that crossed the wire (-z: compressed; dry run: that would be moved, uncompressed). */
  bytesSent: number;
  /** The same block data uncompressed (equals bytesSent without -z). */
  bytesData: number;
  blocksTotal: number;
  blocksChanged: number;
  /** Percentage of blocks that already matched. */
  similarity: number;
  /** Bytes that differ, estimated: inside refined blocks the differing pieces, other changed blocks whole. */
  bytesDiffering: number;
  /** Percentage of bytes that already matched (from bytesDiffering). */
  similarityBytes: number;
  /** Digest bytes one side sent to refine differing blocks (the remote side's cross the wire beside bytesSent). */
  bytesRefineHashes: number;
  seconds: number;
  /** bytesTotal / seconds. */
  throughput: number;
  /** "blocks": every written block read back and matched against the source's hash, the file fsynced; "sha256": also whole-file digests matched. */
  verified: 'none' | 'blocks' | 'sha256';
  targetCreated: boolean;
  /** Changed blocks that were all zeros: sent as zero runs (no bytes on the wire), not counted in bytesSent. */
  blocksZero: number;
  /** Bytes of those blocks (dry run: 0, nothing is read). */
  bytesZero: number;
  /** Of bytesZero, those past the target's old end: not written, left as holes. */
  bytesHoles: number;
  /** The target is a block device (written in place up to the source's size, never resized). */
  targetDevice: boolean;
  /** A device target larger than the source: its bytes past the source's size, left as they were. */
  bytesBeyondSource: number;
  /** Where the time went (-v shows it as one line). */
  profile?: RunProfile;
}

export type SyncEvent =
  | { type: 'phase'; phase: Phase }
  | {
      type: 'start';
      source: string;
      target: string;
      bytesTotal: number;
      blocksTotal: number;
      blockSize: number;
      targetSize: number;
      hashMethod: string;
      mode: 'delta' | 'whole-file' | 'dry-run';
    }
  | {
      type: 'progress';
      /** Bytes compared so far, of bytesToCompare (0 in whole-file mode: nothing is compared). */
      bytesHashed: number;
      bytesToCompare: number;
      /** Block data moved so far, of bytesToSend (which grows as comparing finds differences); with -z counted before packing, unlike the summary's bytesSent. */
      bytesSent: number;
      bytesToSend: number;
      /** Bytes of bytesToSend handled as zero runs so far (no bytes on the wire, but done). */
      bytesZero: number;
      blocksChanged: number;
      bytesTotal: number;
    }
  | { type: 'log'; level: 1 | 2; message: string }
  /** --atomic: the temp file the new version is built in (shown as the user names files on that host). */
  | { type: 'temp'; path: string; resumed: boolean }
  /**
   * The target is being replaced: `renaming` just before the rename is asked for (after
   * every check passed), `renamed` once it is done. Without these, the target is unchanged.
   */
  | { type: 'commit'; stage: 'renaming' | 'renamed' }
  | { type: 'done'; summary: SyncSummary };

export type Emit = (event: SyncEvent) => void;
