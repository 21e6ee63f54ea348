// The servers the browser tests run against, started by playwright.config.ts: the main one
// (in memory, writable), a read-only one seeded from a scrapers file, and one in token mode.
const base = Number(process.env.E2E_PORT ?? 18080);
const url = (port: number) => `http://127.0.0.1:${port}`;

export const mainURL = url(base);
export const readOnlyURL = url(base + 1);
export const tokenURL = url(base + 2);
/** The API token of the token-mode server. */
export const apiToken = "e2e-token-3f9c";

export const servers = [
  { url: mainURL, env: {} },
  { url: readOnlyURL, env: { SNEAKPEEK_READ_ONLY: "true", SNEAKPEEK_SCRAPERS_FILE: "end2end/tests/fixtures/read-only-scrapers.json" } },
  { url: tokenURL, env: { SNEAKPEEK_API_TOKEN: apiToken } },
];
