import { test, expect } from "@playwright/test";
import { createScraper, openHydrated, screenshot } from "./helpers";

test.describe("scrapers page", () => {
  // Other specs share the server: this one's scrapers carry a tag of their own.
  const tag = `zq${Date.now().toString(36)}`;

  test.beforeAll(async ({ request }) => {
    for (const name of ["Daily news digest", "Shop prices"]) {
      await createScraper(request, {
        name: `${tag} ${name}`,
        handler: "extract",
        config: { params: { url: "http://127.0.0.1:9/", fields: { title: { css: "h1" } } } },
      });
    }
  });

  test("lists the scrapers and filters them by name, keeping the filter on reload and back", async ({ page }) => {
    await openHydrated(page, "/");
    await expect(page).toHaveTitle(/Scrapers/);
    const rows = page.getByTestId("scraper-row");
    const search = page.getByTestId("scraper-search");

    await search.fill(tag);
    await expect(rows).toHaveCount(2);
    await expect(rows.first()).toContainText(`${tag} Daily news digest`);
    await expect(rows.first()).toContainText("Inactive");
    await expect(rows.first()).toContainText("Never run");

    await search.fill(`${tag} shop`);
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText("Shop prices");
    await expect(page).toHaveURL(new RegExp(`\\?q=${tag}(\\+|%20)shop$`));

    // The filter lives in the address, so a reload keeps it (rendered by the server).
    await page.reload();
    await expect(search).toHaveValue(`${tag} shop`);
    await expect(rows).toHaveCount(1);

    // And going to a scraper and back returns to the filtered list.
    await rows.first().getByRole("link").click();
    await expect(page.getByTestId("scraper-name")).toHaveText(`${tag} Shop prices`);
    await page.goBack();
    await expect(search).toHaveValue(`${tag} shop`);
    await expect(rows).toHaveCount(1);

    await search.fill(`${tag} nothing like this`);
    await expect(page.getByTestId("scrapers-no-match")).toBeVisible();
    await search.fill("");
    await expect(page.getByTestId("scrapers-no-match")).toBeHidden();
    await expect(page).toHaveURL(/\/$/);
    await screenshot(page, "scrapers");
  });

  test("an unknown address shows the not-found page", async ({ page }) => {
    const response = await page.goto("/no/such/page");
    expect(response?.status()).toBe(404);
    await expect(page.getByRole("heading", { name: "404" })).toBeVisible();
  });
});
