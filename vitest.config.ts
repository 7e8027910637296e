import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['protocol/**/*.test.ts', 'server/**/*.test.ts', 'client/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    // Podman, minutes and fixed ports: their own run, `npm run test:container` (vitest.container.config.ts).
    exclude: [...configDefaults.exclude, 'test/deploy/container.test.ts', 'test/deploy/uws-trixie.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real sockets and real child processes: keep files in parallel but bounded on a 2-core machine.
    maxWorkers: 2,
  },
});
