import { test, expect } from "@playwright/test";
import { openHydrated, screenshot, startFixtureSite, uniqueName } from "./helpers";

let site: Awaited<ReturnType<typeof startFixtureSite>>;
test.beforeAll(async () => {
  site = await startFixtureSite();
});
test.afterAll(async () => {
  await site.close();
});

test("a scraper created in the form runs on demand and its job shows the extracted text", async ({ page }) => {
  const name = uniqueName("Fixture headlines");
  await openHydrated(page, "/new");
  await screenshot(page, "new-scraper");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Handler").selectOption("extract");
  await expect(page.getByTestId("extract-helper")).toBeVisible();
  await page.getByTestId("config-editor").fill(
    JSON.stringify({ params: { url: `${site.url}/article`, fields: { headline: { css: "h1" } } } }, null, 2),
  );
  await page.getByTestId("save-scraper").click();

  await expect(page.getByTestId("toast").filter({ hasText: `Scraper “${name}” created.` })).toBeVisible();
  await expect(page).toHaveURL(/\/scrapers\/\d+$/);
  await expect(page.getByTestId("scraper-name")).toHaveText(name);
  await expect(page.getByTestId("jobs-empty")).toBeVisible();

  await page.getByTestId("run-priority").selectOption({ label: "High" });
  await page.getByTestId("run-now").click();
  await expect(page.getByTestId("toast").filter({ hasText: /Job \d+ queued with high priority/ })).toBeVisible();
  const job = page.getByTestId("job-row").first();
  await expect(job.getByTestId("job-status")).toHaveText("Succeeded");
  await expect(job).toContainText("High");
  await screenshot(page, "scraper");

  await job.getByRole("link").first().click();
  await expect(page).toHaveURL(/\/scrapers\/\d+\/jobs\/\d+$/);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Succeeded");
  await expect(page.getByTestId("job-result")).toContainText('"headline": "Fixture headline"');
  await expect(page.getByTestId("log-line").first()).toBeVisible();

  // The same page straight from the server (before any script runs) shows the same.
  await page.reload();
  await expect(page.getByTestId("job-result")).toContainText('"headline": "Fixture headline"');
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await screenshot(page, "job");
});
