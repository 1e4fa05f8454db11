/* SPDX-License-Identifier: GPL-2.0-or-later */
// Watches netflashd's dashboard in Debian's Chromium (playwright-core):
// a worker goes from enrolled to released on the page, live, without a
// reload; worker-supplied markup shows as text and never runs; a multicast
// session shows; a
// screenshot is saved. Driven by tests/integration/web_browser.sh, which
// flashes the worker once this prints "SEEN enrolled".
//   node watch.mjs URL MAC HOSTILE_MAC SCREENSHOT PROFILE_DIR
import { checker, launch, say } from './browser.mjs';

const [url, mac, hostileMac, shot, profile] = process.argv.slice(2);
const ctx = await launch(profile);
const { check, fail, failed } = checker();
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  let loads = 0, dialogs = 0;
  page.on('load', () => loads++);
  page.on('dialog', (d) => { dialogs++; d.dismiss(); });
  await page.goto(url);
  await page.click('#view-table');
  const state = (m) => page.locator('#workers tbody tr', { has: page.locator(`a[href="#w=${m}"]`) }).locator('td').nth(5);
  await state(mac).locator('.state-enrolled').waitFor({ timeout: 20000 });
  say('SEEN enrolled');
  await state(mac).locator('.state-released').waitFor({ timeout: 90000 });
  check(loads === 1, 'the worker went from enrolled to released on the page, live (no reload)');
  await page.locator('#speeds rect').first().waitFor({ timeout: 15000 });
  const bar = await page.locator('#speeds rect title').first().textContent();
  check(bar.startsWith(mac + ' job '), 'its verified job joins the write-speed plot at once: ' + bar);
  const labels = await page.locator('#speeds text.axis-label').allTextContents();
  const ticks = await page.locator('#speeds text.tick').allTextContents();
  check(labels[0] === 'MB/s' && /verified jobs?, oldest left$/.test(labels[1]) && ticks.length === 3 && ticks[0] === '0',
    'the plot has its axes: ' + labels.join(' / ') + ', ticks ' + ticks.join(' '));
  const hostile = page.locator('#workers tbody tr', { has: page.locator(`a[href="#w=${hostileMac}"]`) });
  const text = await hostile.locator('td').last().textContent();
  const imgs = await page.locator('#workers img').count();
  const pwned = await page.evaluate(() => window.pwned);
  check(text.includes('<img src=x onerror=window.pwned=1>') && imgs === 0 && pwned === undefined && dialogs === 0,
    'markup a worker sent shows as text and does not run');
  const mc = page.locator('#mc tbody tr').first();
  await mc.waitFor({ timeout: 15000 });
  const cells = await mc.locator('td').allTextContents();
  check(cells[1] === 'pios' && cells[2] === 'gathering' && cells[3] === '9000' && cells[4] === '1 (0 done, 0 failed, 1 running)' &&
    cells[6] === '-' && cells.length === 8,
    'the gathering multicast session shows with its member: ' + cells.join(' | '));
  await page.screenshot({ path: shot, fullPage: true });
  say('SCREENSHOT ' + shot);
} catch (e) {
  fail(e);
} finally {
  await ctx.close();
}
process.exit(failed() ? 1 : 0);
