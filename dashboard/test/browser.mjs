// Drives the Davy dashboard in Debian's chromium (headless, through playwright-core): the list
// shows the Rollout, setting an image starts a canary whose tree updates live, Promote advances
// the step, Abort makes it Degraded. A screenshot of each stage is written to SHOTS.
// Usage: node browser.mjs URL NAMESPACE ROLLOUT IMAGE METRIC SHOTS
import { chromium } from "playwright-core";

const [url, ns, name, image, metric, shots] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 60_000;

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${url}/rollouts#/${ns}`);
  const card = page.getByTestId(`rollout-row-${name}`);
  await card.waitFor({ timeout: WAIT });
  await page.getByTestId(`rollout-status-${name}`).filter({ hasText: "Healthy" }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: `${shots}/1-list.png`, fullPage: true });

  await card.click();
  await page.getByTestId("rollout-detail").waitFor({ timeout: WAIT });
  await page.getByTestId("image-input").fill(image);
  await page.getByTestId("action-set-image").click();
  await page.getByTestId("action-result").filter({ hasText: "image updated" }).waitFor({ timeout: WAIT });
  // The canary moves to its first pause: the page is pushed the new step without a reload.
  await page.getByTestId("rollout-status").filter({ hasText: "Paused" }).waitFor({ timeout: WAIT });
  // The analysis step's measurements are drawn as a chart.
  await page.getByTestId(`chart-${metric}`).locator("circle").nth(2).waitFor({ timeout: WAIT });
  const first = (await page.getByTestId("rollout-step").textContent()).trim();
  await page.screenshot({ path: `${shots}/2-paused.png`, fullPage: true });

  await page.getByTestId("action-promote").click();
  await page.getByTestId("action-result").filter({ hasText: "promoted" }).waitFor({ timeout: WAIT });
  await page.waitForFunction(
    ([before]) => {
      const step = document.querySelector('[data-testid="rollout-step"]');
      const status = document.querySelector('[data-testid="rollout-status"]');
      return step && step.textContent.trim() !== before && status && status.textContent.includes("Paused");
    },
    [first],
    { timeout: WAIT },
  );
  const second = (await page.getByTestId("rollout-step").textContent()).trim();
  await page.screenshot({ path: `${shots}/3-promoted.png`, fullPage: true });

  await page.getByTestId("action-abort").click();
  await page.getByTestId("rollout-status").filter({ hasText: "Degraded" }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: `${shots}/4-aborted.png`, fullPage: true });
  console.log(JSON.stringify({ first, second }));
} finally {
  await browser.close();
}
