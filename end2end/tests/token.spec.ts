import { test, expect } from "@playwright/test";
import { openHydrated, screenshot } from "./helpers";
import { apiToken, tokenURL } from "./servers";

test.use({ baseURL: tokenURL });

test("in token mode a person signs in with the token before seeing anything", async ({ page }) => {
  await page.goto("/dashboard");
  await expect(page).toHaveURL(/\/login\?next=(%2F|\/)dashboard$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await screenshot(page, "login");

  await page.getByLabel("API token").fill("not-the-token");
  await page.getByTestId("login-submit").click();
  await expect(page.getByTestId("login-error")).toHaveText("That token is not valid; check it and try again.");

  await page.getByLabel("API token").fill(apiToken);
  await page.getByLabel("API token").press("Enter");
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await openHydrated(page, "/");
  await expect(page.getByRole("heading", { name: "Scrapers" })).toBeVisible();
});
