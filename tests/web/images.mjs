/* SPDX-License-Identifier: GPL-2.0-or-later */
// Image management in the page (issue 30, item 4), as an admin session:
// add an image from a path on the master and watch its progress to the
// end; the catalog shows which workers use each image, an image in use
// cannot be removed, an unused one is removed after a confirm.
// Driven by tests/integration/web_login.sh.
//   node images.mjs URL ADMIN_TOKEN PATH IN_USE_IMAGE USER_MAC PROFILE_DIR
import { checker, launch, logIn } from './browser.mjs';

const [url, admin, path, inUse, userMac, profile] = process.argv.slice(2);
const ctx = await launch(profile);
const { check, fail, failed } = checker();
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(url);
  await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15000 });
  await logIn(page, admin);
  await page.locator('#actions').waitFor({ state: 'visible', timeout: 15000 });
  await page.goto(url + '#images');
  await page.locator('#image-add').waitFor({ state: 'visible', timeout: 15000 });
  await page.fill('#ia-path', path);
  await page.fill('#ia-name', 'added1');
  await page.click('#image-add button');
  const lines = new Set();
  const st = page.locator('#ia-status');
  for (let i = 0; i < 120; i++) {
    const t = await st.textContent();
    lines.add(t);
    if (t.startsWith('added: ') || t.startsWith('image add failed')) break;
    await page.waitForTimeout(500);
  }
  const final = await st.textContent();
  const row = page.locator('#catalog tbody tr', { has: page.locator('td', { hasText: /^added1$/ }) });
  await row.waitFor({ timeout: 15000 });
  check(final.startsWith("added: 'added1' can be flashed now"), 'an image added from a path on the master, its progress shown: ' +
    [...lines].filter(Boolean).slice(-3).join(' | '));
  const used = page.locator('#catalog tbody tr', { has: page.locator('td', { hasText: new RegExp('^' + inUse + '$') }) });
  const usedBy = await used.locator('td').nth(8).textContent();
  check(usedBy.includes(userMac) && await used.locator('button').isDisabled(),
    'the catalog names the workers using an image, whose Remove is disabled: ' + usedBy);
  await row.locator('button').click();
  await row.waitFor({ state: 'detached', timeout: 15000 });
  check(true, 'an unused image is removed from the page after a confirm');
} catch (e) {
  fail(e);
} finally {
  await ctx.close();
}
process.exit(failed() ? 1 : 0);
