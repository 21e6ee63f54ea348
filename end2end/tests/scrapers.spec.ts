import { test, expect } from "@playwright/test";
import { openHydrated, rpc } from "./helpers";

test.describe("scrapers page", () => {
  test.beforeAll(async ({ request }) => {
    for (const name of ["Daily news digest", "Shop prices"]) {
      await rpc(request, "create_scraper", {
        scraper: {
          name,
          schedule: "inactive",
          handler: "extract",
          config: { params: { url: "http://127.0.0.1:9/", fields: { title: { css: "h1" } } } },
        },
      });
    }
  });

  test("lists the scrapers and filters them by name after hydration", async ({ page }) => {
    await openHydrated(page, "/");
    await expect(page).toHaveTitle(/Scrapers/);
    const rows = page.getByTestId("scraper-row");
    await expect(rows).toHaveCount(2);
    await expect(rows.first()).toContainText("Daily news digest");
    await expect(rows.first()).toContainText("Inactive");

    await page.getByTestId("scraper-search").fill("shop");
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText("Shop prices");
    await expect(page).toHaveURL(/\?q=shop$/);

    // The filter lives in the address, so a reload keeps it (rendered by the server).
    await page.reload();
    await expect(page.getByTestId("scraper-search")).toHaveValue("shop");
    await expect(rows).toHaveCount(1);
    await page.screenshot({ path: "test-results/scrapers-page.png", fullPage: true });
  });

  test("an unknown address shows the not-found page", async ({ page }) => {
    await page.goto("/no/such/page");
    await expect(page.getByRole("heading", { name: "404" })).toBeVisible();
  });
});
