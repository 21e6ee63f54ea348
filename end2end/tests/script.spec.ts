import { test, expect } from "@playwright/test";
import { openHydrated, rpc, screenshot } from "./helpers";

test("Run once runs the script in the editor without saving it and shows its result and log", async ({ page, request }) => {
  const before: unknown[] = await rpc(request, "get_scrapers");
  await openHydrated(page, "/new");
  await page.getByLabel("Handler").selectOption("script");
  const editor = page.getByTestId("script-editor");
  await expect(editor).toBeVisible();
  await editor.fill('log("warning", `about to greet ${args.who}`);\n#{ answer: 41 + 1, greeting: `hello ${args.who}` }\n');
  await page.getByTestId("config-editor").fill('{"params": {"args": {"who": "e2e"}}}');

  await page.getByTestId("run-once-button").click();
  const panel = page.getByTestId("run-once");
  await expect(panel.getByTestId("job-status")).toHaveText("Succeeded");
  await expect(panel.getByTestId("job-result")).toContainText('"answer": 42');
  await expect(panel.getByTestId("job-result")).toContainText('"greeting": "hello e2e"');
  await expect(panel.getByTestId("log-line").filter({ hasText: "about to greet e2e" })).toHaveClass(/level-warning/);
  await screenshot(page, "script-editor");

  expect(await rpc(request, "get_scrapers")).toHaveLength(before.length);
});

test("a config that is not valid JSON says where, and Run once waits for a fix", async ({ page }) => {
  await openHydrated(page, "/new");
  await page.getByLabel("Handler").selectOption("script");
  await page.getByTestId("config-editor").fill('{\n  "params": {"args": }\n}');
  await expect(page.getByTestId("scraper-config-error")).toContainText("line 2, column");
  await expect(page.getByTestId("run-once-button")).toBeDisabled();
  await page.getByTestId("config-editor").fill('{"params": {}}');
  await expect(page.getByTestId("scraper-config-error")).toBeEmpty();
  await expect(page.getByTestId("run-once-button")).toBeEnabled();
});
