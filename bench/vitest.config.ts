import { defineConfig } from 'vitest/config';

// Measurements that use the test harness (a real sshd) but assert nothing about speed:
// kept out of `npm test`, run with `npm run bench:ssh-layout`.
export default defineConfig({
  test: {
    include: ['bench/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
