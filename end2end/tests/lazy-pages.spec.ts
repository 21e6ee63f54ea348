import { test, expect, Page } from "@playwright/test";
import { openHydrated } from "./helpers";

// Every page but the scrapers list is a lazy route: its code is a WebAssembly module of its
// own, fetched on the page's first visit instead of with the main module.

/** The wasm files the page fetches from now on, by name. */
function wasmFetches(page: Page): string[] {
  const names: string[] = [];
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (path.endsWith(".wasm")) names.push(path.split("/").pop()!);
  });
  return names;
}

test("the scrapers list loads no page's code but its own; the form's code arrives when it is opened", async ({ page }) => {
  const fetched = wasmFetches(page);
  await openHydrated(page, "/");
  expect(fetched).toContain("sneakpeek.wasm");
  expect(fetched.filter((name) => name.startsWith("split_")), "page modules fetched by the list").toEqual([]);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "New scraper" }).click();
  await expect(page.getByRole("heading", { name: "New scraper" })).toBeVisible();
  await expect.poll(() => fetched.some((name) => name.startsWith("split___new_scraper_page"))).toBe(true);
  // The form's code runs: choosing crontab brings up its field and the preview of its runs.
  await page.getByLabel("Schedule").selectOption("crontab");
  await page.getByLabel("Crontab", { exact: true }).fill("*/15 * * * *");
  await expect(page.getByTestId("crontab-preview").getByRole("listitem")).toHaveCount(5);
});

test("a page opened directly fetches its own modules alongside the main one and becomes interactive", async ({ page }) => {
  const fetched = wasmFetches(page);
  await openHydrated(page, "/dashboard");
  expect(fetched.some((name) => name.startsWith("split___dashboard_page"))).toBe(true);
  expect(fetched.some((name) => name.startsWith("split___new_scraper_page"))).toBe(false);
  await expect(page.getByTestId("queue")).toContainText("Utmost");
  // Client-side navigation from a lazy page back to the list still works.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Scrapers" }).click();
  await expect(page.getByRole("heading", { name: "Scrapers" })).toBeVisible();
});
