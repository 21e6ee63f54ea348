import { test, expect } from "@playwright/test";
import { openHydrated, rpc, uniqueName } from "./helpers";

test("a bad crontab is explained at its field, and saving it stores nothing", async ({ page, request }) => {
  const name = uniqueName("Nightly");
  await openHydrated(page, "/new");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Schedule").selectOption("crontab");

  const crontab = page.getByLabel("Crontab (UTC)");
  const error = page.getByTestId("scraper-crontab-error");
  await crontab.fill("*/15 * * * *");
  await expect(page.getByTestId("crontab-preview").getByRole("listitem")).toHaveCount(5);
  await expect(error).toBeEmpty();

  await crontab.fill("61 * * *");
  await expect(error).toContainText("expected 5 fields");
  await crontab.fill("61 * * * *");
  await expect(error).not.toBeEmpty();
  await expect(crontab).toHaveAttribute("aria-invalid", "true");

  await page.getByTestId("save-scraper").click();
  await expect(page.getByTestId("form-error")).toHaveText("The scraper was not saved: some fields need fixing.");
  await expect(error).not.toBeEmpty();
  await expect(page).toHaveURL(/\/new$/);
  const scrapers: { name: string }[] = await rpc(request, "get_scrapers");
  expect(scrapers.map((scraper) => scraper.name)).not.toContain(name);
});
