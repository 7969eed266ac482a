import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: files in parallel would only fight over them (and over sshd).
    fileParallelism: false,
    reporters: ['default'],
  },
});
