import { defineConfig } from "vitest/config";

// Training tests run real (small) trainings on the wasm backend: node environment, generous timeouts, one file at a
// time (2 cores; parallel files would only slow each other down).
export default defineConfig({
  test: {
    environment: "node",
    include: ["test/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
