import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fixture project and the API server the Kubernetes and command-line tests share.
    globalSetup: ['test/support/global-setup.ts'],
    // Real PostgreSQL and API servers start per test file; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
