import { defineConfig } from 'vitest/config';

/**
 * `npm run test:container`: the image and the compose file with podman (test/deploy/container.test.ts),
 * and the transport tests on Node 24 + uWS 20.57 in Debian 13 (test/deploy/uws-trixie.test.ts).
 * Apart from `npm test`: minutes on a cold cache, and docker-compose.yml's fixed ports.
 */
export default defineConfig({
  test: {
    include: ['test/deploy/container.test.ts', 'test/deploy/uws-trixie.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 1_200_000,
    maxWorkers: 1,
  },
});
