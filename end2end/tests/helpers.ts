import { expect, Page, APIRequestContext } from "@playwright/test";
import * as http from "node:http";
import { AddressInfo } from "node:net";

/** Calls a JsonRPC method and returns its result, failing the test on a JsonRPC error. */
export async function rpc(request: APIRequestContext, method: string, params: object = {}): Promise<any> {
  const response = await request.post("/api/v1/jsonrpc", {
    data: { jsonrpc: "2.0", id: 0, method, params },
  });
  expect(response.status()).toBe(200);
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

/** Opens a page and waits until hydration has made it interactive. */
export async function openHydrated(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** A name no other test uses, so tests sharing a server do not see each other's scrapers. */
export function uniqueName(prefix: string): string {
  return `${prefix} ${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
}

/** Creates a scraper through the API and returns it. */
export async function createScraper(request: APIRequestContext, scraper: object): Promise<any> {
  return rpc(request, "create_scraper", { scraper: { schedule: "inactive", ...scraper } });
}

/**
 * A local web site for the scrapers under test: `/article` is a page with a heading,
 * `/slow` answers only after a minute (a job that runs until it is killed), and
 * `/flaky?...` answers 503 twice, then as `/article` (each query string counts on its own).
 */
export async function startFixtureSite(): Promise<{ url: string; close: () => Promise<void> }> {
  const pending = new Set<http.ServerResponse>();
  const flaky = new Map<string, number>();
  const server = http.createServer((request, response) => {
    if (request.url?.startsWith("/flaky")) {
      const seen = (flaky.get(request.url) ?? 0) + 1;
      flaky.set(request.url, seen);
      if (seen <= 2) {
        response.writeHead(503).end("busy");
        return;
      }
      response.writeHead(200, { "content-type": "text/html" });
      response.end("<html><body><h1>Fixture headline</h1></body></html>");
    } else if (request.url === "/article") {
      response.writeHead(200, { "content-type": "text/html" });
      response.end("<html><body><h1>Fixture headline</h1><p class='lead'>Served by the test.</p></body></html>");
    } else if (request.url === "/slow") {
      pending.add(response);
      setTimeout(() => response.end("late"), 60_000).unref();
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const response of pending) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Saves a screenshot of the whole page into the test output (test-results/screenshots). */
export async function screenshot(page: Page, name: string) {
  await page.screenshot({ path: `test-results/screenshots/${name}.png`, fullPage: true });
}
