import { describe, expect, it } from 'vitest';
import { summaryText } from '../../src/cli/render/summary-text.js';
import type { SyncSummary } from '../../src/engine/events.js';

const MiB = 1 << 20;
const base: SyncSummary = {
  source: 'a.img',
  target: 'b.img',
  dryRun: false,
  wholeFile: false,
  hashMethod: 'xxh64',
  blockSize: MiB,
  bytesTotal: 64 * MiB,
  bytesSent: 2 * MiB,
  bytesData: 2 * MiB,
  blocksTotal: 64,
  blocksChanged: 64,
  similarity: 0,
  bytesDiffering: 64 * MiB,
  similarityBytes: 0,
  bytesRefineHashes: 0,
  seconds: 1,
  throughput: 64 * MiB,
  verified: 'blocks',
  targetCreated: true,
  blocksZero: 0,
  bytesZero: 0,
  bytesHoles: 0,
  targetDevice: false,
  bytesBeyondSource: 0,
};

describe('summary line', () => {
  it('says nothing of zeros when there were none', () => {
    expect(summaryText(base)).toContain('sent 2.00 MiB in 1.00 s');
    expect(summaryText(base)).not.toContain('zero');
  });

  it('-z: says how much data the bytes sent carried, and the ratio', () => {
    expect(summaryText(base)).not.toContain('compressed');
    const t = summaryText({ ...base, bytesSent: MiB, bytesData: 2 * MiB });
    expect(t).toContain('sent 1.00 MiB (2.00 MiB of data compressed 2.00:1) in 1.00 s');
  });

  it('gives the share of bytes that match beside the share of blocks', () => {
    const t = summaryText({ ...base, similarityBytes: 99.5, bytesDiffering: 327680 });
    expect(t).toContain('64 of 64 blocks changed (0.00% similar; about 99.50% of bytes match, 320.00 KiB differ)');
    const dry = summaryText({ ...base, dryRun: true, similarityBytes: 99.5, bytesDiffering: 327680, bytesSent: 327680 });
    expect(dry).toContain('about 99.50% of bytes match, 320.00 KiB differ; would send 64 block(s), 320.00 KiB of 64.00 MiB');
  });

  it('counts zero runs apart from the bytes sent, and the holes among them', () => {
    const t = summaryText({ ...base, blocksZero: 62, bytesZero: 62 * MiB, bytesHoles: 60 * MiB });
    expect(t).toContain('sent 2.00 MiB + 62.00 MiB of zeros as zero runs (62 block(s), 60.00 MiB of it left as holes) in 1.00 s');
  });

  it('a larger target device: says how much past the source was left as it was', () => {
    const t = summaryText({ ...base, targetDevice: true, bytesBeyondSource: 2 * MiB });
    expect(t).toMatch(/; the device's last 2\.00 MiB \(past the source's size\) left as they were$/);
  });
});
