// Drives the dashboard of `bench serve` in a real headless Chromium (Debian's), as a user
// would: token, a new run from the form, the list, the run page, the pair picker, search.
// Usage: node dashboard.mjs URL TOKEN [SCREENSHOT.png]. Exit 0 when every step passed.
import { chromium } from "playwright-core";

const [url, token, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = async (msg) => { console.error("FAIL: " + msg); await browser.close(); process.exit(1); };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => fail("page error: " + e.message));
  await page.goto(url + "/");
  // without the token the API refuses and the page says so
  await page.waitForSelector("#conn .err", { timeout: 10000 });
  await page.fill("#token", token);
  await page.dispatchEvent("#token", "change");
  await page.waitForFunction(() => /in the catalog/.test(document.querySelector("#conn").textContent), null, { timeout: 10000 });

  // a run against the simulated engine, from the form
  await page.fill("#f-name", "browser-run");
  await page.fill("#f-tags", "ui, smoke");
  await page.fill("#f-concurrency", "4");
  await page.fill("#f-input", "96");
  await page.fill("#f-output", "16");
  await page.fill("#f-requests", "20");
  await page.click("#f-submit");
  await page.waitForSelector("#f-open", { timeout: 15000 });
  // it appears in the list, and finishes
  await page.waitForFunction(() => [...document.querySelectorAll("#list tbody tr")].some((r) =>
    r.textContent.includes("browser-run") && r.textContent.includes("success")), null, { timeout: 90000, polling: 500 });
  const row = page.locator("#list tbody tr", { hasText: "browser-run" });
  if (!(await row.textContent()).includes("smoke")) await fail("the row shows no tags");

  // the run page: headline numbers, the report, the pair picker
  await row.click();
  await page.waitForSelector("#headline .card", { timeout: 15000 });
  const cards = await page.locator("#headline .card").allTextContents();
  if (!cards.some((c) => c.startsWith("20") && c.includes("successful requests"))) await fail("headline: " + cards.join(" | "));
  await page.waitForFunction(() => (document.querySelector("#report").srcdoc || "").includes("bench report: browser-run"), null, { timeout: 15000 });
  const frame = page.frameLocator("#report");
  await frame.locator("h1").waitFor({ timeout: 15000 });
  await page.selectOption("#field1", "output_len");
  await page.selectOption("#field2", "latency");
  await page.click("#pair-go");
  await page.waitForFunction(() => document.querySelectorAll("#pair-plot circle.pt").length === 20, null, { timeout: 10000 });
  if ((await page.textContent("#pair-info")) !== "20 requests") await fail("pair info: " + (await page.textContent("#pair-info")));

  // search narrows the list
  await page.fill("#search", "no-such-thing");
  await page.waitForFunction(() => document.querySelectorAll("#list tbody tr").length === 0, null, { timeout: 10000 });
  await page.fill("#search", "browser");
  await page.waitForFunction(() => document.querySelectorAll("#list tbody tr").length === 1, null, { timeout: 10000 });
  if (shot) await page.screenshot({ path: shot, fullPage: false });
  console.log("ok: dashboard");
  await browser.close();
} catch (e) {
  await fail(e.message);
}
