import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/**
 * Worker tests: run INSIDE workerd through @cloudflare/vitest-pool-workers 0.15 (the Vitest 4 API is the
 * `cloudflareTest()` Vite plugin; `defineWorkersConfig`/`poolOptions.workers` belonged to Vitest 2/3).
 * Module rules (.wasm → CompiledWasm, .onnx → Data), `main` and the compatibility date come from the root wrangler.toml.
 * Run with WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false.
 */
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: new URL("../wrangler.toml", import.meta.url).pathname },
      // Tests see a model switch the moment it is published, and run its background steps themselves
      // (runDurableObjectAlarm) instead of racing the alarm.
      miniflare: { bindings: { MODEL_ROUTE_CACHE_MS: "0", ROLLOUT_STEP_INTERVAL_MS: "3600000" } },
    }),
  ],
  test: {
    name: "worker",
    root: new URL("..", import.meta.url).pathname,
    include: ["test/worker/**/*.test.ts"],
    // Instantiating ORT's 14 MB wasm module takes a few seconds on a cold isolate.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
