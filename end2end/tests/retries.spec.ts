import { test, expect } from "@playwright/test";
import { openHydrated, screenshot, startFixtureSite, uniqueName } from "./helpers";

let site: Awaited<ReturnType<typeof startFixtureSite>>;
test.beforeAll(async () => {
  site = await startFixtureSite();
});
test.afterAll(async () => {
  await site.close();
});

test("a retry policy set in the form retries a failing job with backoff until it succeeds", async ({ page }) => {
  const name = uniqueName("Flaky site");
  await openHydrated(page, "/new");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Handler").selectOption("extract");
  await page.getByTestId("config-editor").fill(
    JSON.stringify({ params: { url: `${site.url}/flaky?${encodeURIComponent(name)}`, fields: { headline: { css: "h1" } } } }),
  );
  // The server's default applies until the scraper has a policy of its own.
  await expect(page.getByTestId("retry-summary")).toContainText("Server default. On worker lost: 3 attempts in all");
  await page.getByTestId("retry-own").check();
  await page.getByTestId("retry-max-attempts").fill("4");
  await page.getByTestId("retry-backoff").selectOption("exponential");
  await page.getByTestId("retry-delay").fill("1");
  await page.getByTestId("retry-max-delay").fill("10");
  await page.getByTestId("retry-jitter").fill("0");
  await page.getByTestId("retry-on-http_status").check();
  await expect(page.getByTestId("retry-summary")).toHaveText(
    "On worker lost, HTTP 429 or 5xx: 4 attempts in all, retried after 1.0 s, 2.0 s, 4.0 s.",
  );
  // A value out of bounds is named before saving.
  await page.getByTestId("retry-max-attempts").fill("21");
  await expect(page.getByTestId("retry-summary")).toHaveText("max_attempts: must be from 1 to 20");
  await page.getByTestId("retry-max-attempts").fill("4");
  await screenshot(page, "retry-policy");
  await page.getByTestId("save-scraper").click();
  await expect(page).toHaveURL(/\/scrapers\/\d+$/);
  const scraperPath = new URL(page.url()).pathname;

  await page.getByTestId("run-now").click();
  const job = page.getByTestId("job-row").first();
  // The site answers 503 twice: the job waits for its second attempt, then its third.
  await expect(job.getByTestId("job-attempt-note")).toContainText("attempt 2");
  await expect(job.getByTestId("job-status")).toHaveText("Succeeded", { timeout: 20_000 });
  await expect(job.getByTestId("job-attempt-note")).toContainText("attempt 3");

  await job.getByRole("link").first().click();
  await expect(page.getByTestId("job-attempt")).toHaveText("3 of 4");
  const attempts = page.getByTestId("job-attempts").locator("tbody tr");
  await expect(attempts).toHaveCount(2);
  await expect(attempts.first()).toContainText("HTTP 429 or 5xx");
  await expect(attempts.first()).toContainText("503");
  await expect(page.getByTestId("job-result")).toContainText('"headline": "Fixture headline"');
  await expect(page.getByTestId("log-line").filter({ hasText: "Attempt 3 of 4: attempt 2 ended with HTTP 429 or 5xx" })).toBeVisible();
  await screenshot(page, "job-retried");

  // The scraper's form shows the policy it was saved with.
  await openHydrated(page, `${scraperPath}/edit`);
  await expect(page.getByTestId("retry-own")).toBeChecked();
  await expect(page.getByTestId("retry-max-attempts")).toHaveValue("4");
});
