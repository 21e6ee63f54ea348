import { test, expect } from "@playwright/test";
import { openHydrated } from "./helpers";

test("a job logging 100,000 lines keeps 10,000 of them, says so, and its log stays quick to scroll, with only the visible lines in the page", async ({ page }) => {
  await openHydrated(page, "/new");
  await page.getByLabel("Handler").selectOption("script");
  await page.getByTestId("script-editor").fill('for i in 1..=100000 { log(`line ${i}`); }\n"done"\n');
  await page.getByTestId("config-editor").fill('{"params": {}}');
  await page.getByTestId("run-once-button").click();

  const panel = page.getByTestId("run-once");
  await expect(panel.getByTestId("job-status")).toHaveText("Succeeded", { timeout: 30_000 });
  // The worker's first line, the handler's 10,000 lines, the truncation note, the outcome.
  await expect(panel.getByTestId("log-count")).toHaveText("10003 lines", { timeout: 30_000 });
  // Following the end: the last lines are in view.
  await expect(panel.getByTestId("log-line").filter({ hasText: /line 10000$/ })).toBeVisible();
  await expect(panel.getByTestId("log-line").filter({ hasText: /^.*Log truncated/ })).toBeVisible();
  expect(await panel.getByTestId("log-line").count()).toBeLessThan(200);

  // Scrolling back to the top shows the first lines and stops following.
  await panel.getByTestId("job-log").evaluate((log) => log.scrollTo(0, 0));
  await expect(panel.getByTestId("log-line").filter({ hasText: /line 1$/ })).toBeVisible();
  await expect(panel.getByTestId("log-follow")).not.toBeChecked();
});
