/** Pure planning for --benchmark: which delta each round applies. */
export interface BenchRound {
  round: number;
  /** Percentage of blocks to change. */
  delta: number;
  blocks: number;
  seed: number;
}

/** COUNT rounds with delta = 100/COUNT*i % (i = 1..COUNT), as the original tool did. */
export function benchRounds(count: number, totalBlocks: number): BenchRound[] {
  return Array.from({ length: count }, (_, k) => {
    const i = k + 1;
    const delta = Math.round((100 / count) * i * 100) / 100;
    return { round: i, delta, blocks: Math.round((totalBlocks * delta) / 100), seed: 0x5eed + i };
  });
}
