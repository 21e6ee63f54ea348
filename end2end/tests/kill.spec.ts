import { test, expect } from "@playwright/test";
import { createScraper, openHydrated, startFixtureSite, uniqueName } from "./helpers";

let site: Awaited<ReturnType<typeof startFixtureSite>>;
test.beforeAll(async () => {
  site = await startFixtureSite();
});
test.afterAll(async () => {
  await site.close();
});

test("a slow job can be killed from the scraper page", async ({ page, request }) => {
  const scraper = await createScraper(request, {
    name: uniqueName("Slowpoke"),
    handler: "extract",
    config: { params: { url: `${site.url}/slow` } },
  });
  await openHydrated(page, `/scrapers/${scraper.id}`);
  await page.getByTestId("run-now").click();
  const job = page.getByTestId("job-row").first();
  await expect(job.getByTestId("job-status")).toHaveText("Running");

  await job.getByTestId("kill-job").click();
  await expect(page.getByTestId("toast").filter({ hasText: /Job \d+ killed\./ })).toBeVisible();
  await expect(job.getByTestId("job-status")).toHaveText("Killed");
  await expect(job.getByTestId("kill-job")).toHaveCount(0);

  // Running it again now works: the killed job no longer holds the scraper.
  await page.getByTestId("run-now").click();
  await expect(page.getByTestId("job-row")).toHaveCount(2);
  await page.getByTestId("run-now").click();
  await expect(page.getByTestId("toast").filter({ hasText: "already has a pending or running job" })).toBeVisible();
});
