import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fixture project and the API server the Kubernetes and command-line tests share.
    globalSetup: ['test/support/global-setup.ts'],
    // Most test time is spent waiting on child processes (PostgreSQL, kube-apiserver, kubectl,
    // the command line): a worker per core, not vitest's cores - 1, keeps a 2-core machine busy
    // (there, the suite takes about 2 minutes instead of 3 to 4).
    maxWorkers: availableParallelism(),
    // Real PostgreSQL and API servers start per test file; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
