import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { BrokenFleet } from '../integration/status/broken-fleet';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
/** Git-ignored; CI and developers find the screenshots here. */
const ARTIFACTS = resolve(__dirname, '..', '..', '.artifacts', 'status-page');

/** Text of the row of server `name` in the servers table, as the browser renders it. */
function serverRowText(page: Page, name: string): Promise<string> {
  return page.evaluate(
    `document.querySelector('tr[data-server="${name}"]')?.innerText ?? ''`,
  ) as Promise<string>;
}

describe('status page in headless Chromium', function () {
  // Chromium's start and the scenario take a few seconds on a loaded 2-core box.
  this.timeout(90_000);
  const fleet = new BrokenFleet();
  let browser: Browser | undefined;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    // Root in a container: Chromium's sandbox needs namespaces it may not have.
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    await fleet.start({ STATUS_REFRESH_SECONDS: '1' });
  });

  after(async () => {
    await browser?.close();
    await fleet.close();
  });

  it('shows the broken server, the open breaker and the growing queue on a phone-sized screen, and refreshes itself', async () => {
    await fleet.breakServer();
    await fleet.openBreaker();
    fleet.sendSlow(3, 30_000);
    await fleet.waitQueued(2);

    const page = await browser!.newPage();
    await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 1, isMobile: true });
    const answer = await page.goto(`${fleet.url}/status`, { waitUntil: 'load' });
    assert.equal(answer?.status(), 200);
    assert.match(await page.title(), /^2 down · triton-proxy status$/);

    const t1 = await serverRowText(page, 't1');
    assert.match(t1, /not ready/, t1);
    assert.match(t1, /stale/, t1);
    const t2 = await serverRowText(page, 't2');
    assert.match(t2, /\bopen\b/, t2);
    assert.match(t2, /100%/, `every recent call to t2 failed: ${t2}`);
    const queued = Number(
      await page.evaluate(`document.querySelector('[data-field="queued"]').innerText`),
    );
    assert.equal(queued, 2);
    const text = (await page.evaluate('document.body.innerText')) as string;
    assert.match(text, /illegal memory access/);
    assert.match(text, /Models × servers/);

    // Usable on a phone: the page itself does not scroll sideways (wide tables scroll in their box).
    const overflow = (await page.evaluate(
      'document.documentElement.scrollWidth - window.innerWidth',
    )) as number;
    assert.ok(overflow <= 0, `page is ${overflow} px wider than the screen`);
    // Colours come from the inline style: an open breaker is drawn red.
    const red = (await page.evaluate(
      `getComputedStyle(document.querySelector('tr[data-server="t2"] .badge.bad')).backgroundColor`,
    )) as string;
    assert.equal(red, 'rgb(207, 34, 46)');

    const phone = join(ARTIFACTS, 'status-phone.png');
    await page.screenshot({ path: phone, fullPage: true });

    // The queue grows; the page reloads itself (meta refresh, 1 s here) and shows it.
    fleet.sendSlow(3, 30_000);
    await fleet.waitQueued(5);
    await page.waitForFunction(
      `Number(document.querySelector('[data-field="queued"]')?.innerText) === 5`,
      { timeout: 15_000 },
    );

    await page.setViewport({ width: 1280, height: 900, deviceScaleFactor: 1 });
    const desktop = join(ARTIFACTS, 'status-desktop.png');
    await page.screenshot({ path: desktop, fullPage: true });
    console.log(`      screenshots: ${phone}\n                   ${desktop}`);
    assert.ok(existsSync(phone) && existsSync(desktop));
    await page.close();
  });
});
