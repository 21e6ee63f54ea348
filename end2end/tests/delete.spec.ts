import { test, expect } from "@playwright/test";
import { createScraper, openHydrated, rpc, uniqueName } from "./helpers";

test("deleting a scraper asks first, and Cancel keeps it", async ({ page, request }) => {
  const scraper = await createScraper(request, { name: uniqueName("Doomed"), handler: "extract", config: { params: { url: "http://127.0.0.1:9/" } } });
  await openHydrated(page, `/scrapers/${scraper.id}/edit`);

  await page.getByTestId("delete-scraper").click();
  const confirm = page.getByTestId("confirm-delete");
  await expect(confirm).toContainText(`Delete scraper “${scraper.name}”?`);
  // The choice is where the keyboard is.
  await expect(confirm.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(confirm).toBeHidden();
  expect((await rpc(request, "get_scraper", { id: scraper.id })).name).toBe(scraper.name);

  await page.getByTestId("delete-scraper").click();
  await page.getByTestId("confirm-delete-button").click();
  await expect(page.getByTestId("toast").filter({ hasText: `Scraper “${scraper.name}” deleted.` })).toBeVisible();
  await expect(page).toHaveURL(/\/$/);
  await page.getByTestId("scraper-search").fill(scraper.name);
  await expect(page.getByTestId("scraper-row")).toHaveCount(0);
  const scrapers: { id: number }[] = await rpc(request, "get_scrapers");
  expect(scrapers.map((stored) => stored.id)).not.toContain(scraper.id);
});
