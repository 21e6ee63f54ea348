import { test, expect } from "@playwright/test";
import { openHydrated, rpc, uniqueName } from "./helpers";

test("a bad crontab is explained at its field, and saving it stores nothing", async ({ page, request }) => {
  const name = uniqueName("Nightly");
  await openHydrated(page, "/new");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Schedule").selectOption("crontab");

  const crontab = page.getByLabel("Crontab", { exact: true });
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

test("a crontab is read in the scraper's time zone, and a migrated one as 0.1.7 read it", async ({ page, request }) => {
  const name = uniqueName("Nightly in Kolkata");
  await openHydrated(page, "/new");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Schedule").selectOption("crontab");
  await page.getByLabel("Crontab", { exact: true }).fill("30 2 * * 0");
  const zone = page.getByTestId("scraper-timezone");
  await zone.fill("Mars/Olympus");
  await expect(page.getByTestId("scraper-timezone-error")).toContainText("not an IANA time zone name");
  await zone.fill("Asia/Kolkata");
  await expect(page.getByTestId("scraper-timezone-error")).toBeEmpty();
  await page.getByTestId("scraper-dialect").selectOption("apscheduler");
  await expect(page.getByTestId("crontab-preview").getByRole("listitem")).toHaveCount(5);
  await page.getByTestId("save-scraper").click();
  await expect(page).toHaveURL(/\/scrapers\/\d+$/);

  const scrapers: any[] = await rpc(request, "get_scrapers");
  const saved = scrapers.find((scraper) => scraper.name === name);
  expect(saved.schedule_timezone).toBe("Asia/Kolkata");
  expect(saved.schedule_crontab_dialect).toBe("apscheduler");
  // Weekday 0 is Monday in 0.1.7's reading: 02:30 on a Monday in Kolkata is 21:00 UTC on
  // a Sunday.
  await openHydrated(page, "/");
  const row = page.getByTestId("scraper-row").filter({ hasText: name });
  await expect(row).toContainText("Crontab 30 2 * * 0 (Asia/Kolkata)");
  const next = new Date((await row.getByTestId("next-run").locator("time").getAttribute("datetime"))!);
  expect(next.getUTCDay()).toBe(0);
  expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([21, 0]);
});
