import { test, expect } from "@playwright/test";
import { createScraper, openHydrated, rpc, screenshot, startFixtureSite, uniqueName } from "./helpers";

let site: Awaited<ReturnType<typeof startFixtureSite>>;
test.beforeAll(async () => {
  site = await startFixtureSite();
});
test.afterAll(async () => {
  await site.close();
});

test("switching a scraper to every second makes jobs appear on its page by themselves", async ({ page, request }) => {
  const scraper = await createScraper(request, {
    name: uniqueName("Ticking"),
    handler: "extract",
    config: { params: { url: `${site.url}/article`, fields: { headline: { css: "h1" } } } },
  });
  try {
    await openHydrated(page, `/scrapers/${scraper.id}/edit`);
    await expect(page.getByLabel("Schedule")).toHaveValue("inactive");
    await page.getByLabel("Schedule").selectOption({ label: "Every second" });
    await page.getByTestId("save-scraper").click();
    await expect(page.getByTestId("toast").filter({ hasText: `Scraper “${scraper.name}” saved.` })).toBeVisible();
    await expect(page).toHaveURL(new RegExp(`/scrapers/${scraper.id}$`));
    await expect(page.getByTestId("scraper-schedule")).toHaveText("Every second");

    // No reload, no click: the live stream brings the scheduler's jobs.
    const rows = page.getByTestId("job-row");
    await expect(async () => expect(await rows.count()).toBeGreaterThanOrEqual(3)).toPass({ timeout: 15_000 });
    await expect(rows.getByTestId("job-status").filter({ hasText: "Succeeded" }).first()).toBeVisible();
  } finally {
    await rpc(request, "update_scraper", { scraper: { ...scraper, schedule: "inactive" } });
  }
});
