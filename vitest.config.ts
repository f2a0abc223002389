import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Namespace tests create kernel objects with fixed names; files run in parallel workers but each
    // file picks unique names, so parallelism is safe. Keep 2 workers: CI has 2 cores.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
