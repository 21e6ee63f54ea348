import { test, expect } from "@playwright/test";
import { createScraper, openHydrated, rpc, screenshot, uniqueName } from "./helpers";

test("the dashboard shows the queue, the replica, the chart and the failing scrapers", async ({ page, request }) => {
  const failing = await createScraper(request, { name: uniqueName("Broken link"), handler: "extract", config: { params: { url: "http://127.0.0.1:9/" } } });
  const job = await rpc(request, "enqueue_scraper", { scraper_id: failing.id, priority: 0 });
  await expect.poll(async () => (await rpc(request, "get_scraper_job", { scraper_id: failing.id, job_id: job.id })).status).toBe("failed");

  await openHydrated(page, "/dashboard");
  await expect(page).toHaveTitle(/Dashboard/);
  await expect(page.getByTestId("queue")).toContainText("Utmost");
  await expect(page.getByTestId("replica")).toContainText("Leading");
  await expect(page.getByTestId("jobs-chart")).toHaveAttribute("aria-label", /[1-9]\d* failed/);
  await expect(page.getByTestId("failing-table").getByRole("link", { name: failing.name })).toBeVisible();
  await screenshot(page, "dashboard");
});

test("on a phone-sized screen the pages fit the width and the navigation stays usable", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  for (const path of ["/", "/new", "/dashboard"]) {
    await openHydrated(page, path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${path} is wider than the screen`).toBeLessThanOrEqual(0);
  }
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Scrapers" }).click();
  await expect(page.getByRole("heading", { name: "Scrapers" })).toBeVisible();
  await screenshot(page, "scrapers-narrow");
});
