/* SPDX-License-Identifier: GPL-2.0-or-later */
// The rack grid with a fleet of 70 (issue 30, item 4): one tile a worker,
// grouped by hostname prefix; the text, state and group filters; the
// table as the second view, filtered alike; a screenshot.
// Driven by tests/integration/web_grid.sh.
//   node grid.mjs URL RELEASED_HOSTNAME SCREENSHOT PROFILE_DIR
import { checker, launch } from './browser.mjs';

const [url, releasedHost, shot, profile] = process.argv.slice(2);
const ctx = await launch(profile, { width: 1180, height: 900 });
const { check, fail, failed } = checker();
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(url);
  await page.locator('#grid .tile').nth(69).waitFor({ timeout: 20000 });
  const heads = await page.locator('#grid .rack h3').allTextContents();
  const tiles = await page.locator('#grid .tile').count();
  check(tiles === 70 && heads.join('|') === 'rack1 (35)|rack2 (35)',
    'the grid: 70 tiles in two racks by hostname prefix: ' + heads.join(', '));
  await page.screenshot({ path: shot, fullPage: true });
  await page.fill('#f-text', 'rack2-1');
  const names = await page.locator('#grid .tile .name').allTextContents();
  check(names.length === 10 && names.every(n => n.startsWith('rack2-1')), 'text filter rack2-1: ' + names.length + ' tiles');
  await page.fill('#f-text', '');
  await page.selectOption('#f-state', 'released');
  const rel = await page.locator('#grid .tile .name').allTextContents();
  check(rel.length === 1 && rel[0] === releasedHost && await page.locator('#grid .tile-released').count() === 1,
    'state filter released: ' + rel.join(', '));
  await page.selectOption('#f-state', '');
  await page.selectOption('#f-group', 'rack1');
  await page.click('#view-table');
  const rows = await page.locator('#workers tbody tr').count();
  const shown = await page.locator('#shown').textContent();
  check(await page.locator('#grid').isHidden() && rows === 35 && shown === '35 of 70 shown',
    'the table view, filtered alike: ' + rows + ' rows, ' + shown);
} catch (e) {
  fail(e);
} finally {
  await ctx.close();
}
process.exit(failed() ? 1 : 0);
