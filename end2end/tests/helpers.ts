import { expect, Page, APIRequestContext } from "@playwright/test";

/** Calls a JsonRPC method and returns its result, failing the test on a JsonRPC error. */
export async function rpc(request: APIRequestContext, method: string, params: object = {}): Promise<any> {
  const response = await request.post("/api/v1/jsonrpc", {
    data: { jsonrpc: "2.0", id: 0, method, params },
  });
  expect(response.status()).toBe(200);
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

/** Opens a page and waits until hydration has made it interactive. */
export async function openHydrated(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}
