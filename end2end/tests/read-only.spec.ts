import { test, expect } from "@playwright/test";
import { openHydrated, screenshot } from "./helpers";
import { readOnlyURL } from "./servers";

test.use({ baseURL: readOnlyURL });

test("a read-only server shows its scrapers but offers no way to change them", async ({ page }) => {
  await openHydrated(page, "/");
  const row = page.getByTestId("scraper-row").filter({ hasText: "Archived catalogue" });
  await expect(row).toBeVisible();
  await expect(page.getByRole("link", { name: "New scraper" })).toHaveCount(0);

  await row.getByRole("link", { name: "Archived catalogue" }).click();
  await expect(page.getByTestId("scraper-name")).toHaveText("Archived catalogue");
  await expect(page.getByTestId("edit-scraper")).toHaveCount(0);

  await openHydrated(page, page.url() + "/edit");
  await expect(page.getByTestId("read-only-notice")).toBeVisible();
  await expect(page.getByLabel("Name")).toBeDisabled();
  await expect(page.getByLabel("Name")).toHaveValue("Archived catalogue");
  await expect(page.getByTestId("save-scraper")).toHaveCount(0);
  await expect(page.getByTestId("delete-scraper")).toHaveCount(0);
  await screenshot(page, "read-only-form");

  await openHydrated(page, "/new");
  await expect(page.getByTestId("read-only-notice")).toBeVisible();
  await expect(page.getByTestId("save-scraper")).toHaveCount(0);
});
