import { defineConfig } from "@playwright/test";
import { mainURL, servers } from "./tests/servers";

// The servers under test: started by Playwright, each ready once /healthz answers.
// SNEAKPEEK_BIN is the built server binary; the site (wasm, css) is in target/site.

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  reporter: [["list"], ["html", { open: "never" }]],
  outputDir: "test-results",
  use: {
    baseURL: mainURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        browserName: "chromium",
        viewport: { width: 1280, height: 800 },
        launchOptions: {
          // Debian's Chromium: Playwright cannot download browsers here.
          executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
          args: [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
          ],
        },
      },
    },
  ],
  webServer: servers.map(({ url, env }) => ({
    command: process.env.SNEAKPEEK_BIN ?? "../target/debug/sneakpeek",
    cwd: "..",
    url: `${url}/healthz`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: "pipe" as const,
    stderr: "pipe" as const,
    env: {
      SNEAKPEEK_LISTEN: url.replace("http://", ""),
      LEPTOS_SITE_ROOT: "target/site",
      LEPTOS_OUTPUT_NAME: "sneakpeek",
      SNEAKPEEK_LOG: "info",
      // The fixture site the scrapers fetch runs on 127.0.0.1, which the egress policy
      // refuses unless the operator allows it.
      SNEAKPEEK_EGRESS_ALLOW: "127.0.0.1/32",
      ...env,
    },
  })),
});
