/* SPDX-License-Identifier: GPL-2.0-or-later */
// Logs in to netflashd's dashboard from Debian's Chromium (playwright-core)
// as a browser on the LAN would: the page shows the login form, a wrong
// token is refused on the page, the read token shows the fleet; the session
// cookie is HttpOnly and SameSite=Strict; logging out shows the form again.
// Driven by tests/integration/web_login.sh.
// Then the admin token's session acts from the page: the worker ticked in
// the fleet table is released with the Release button, after a confirm.
//   node login.mjs URL READ_TOKEN MAC PROFILE_DIR ADMIN_TOKEN
import { checker, launch, logIn } from './browser.mjs';

const [url, token, mac, profile, admin] = process.argv.slice(2);
const ctx = await launch(profile);
const { check, fail, failed } = checker();
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(url);
  await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15000 });
  check(await page.locator('#fleet').isHidden(), 'the page opens on its login form, the fleet hidden');
  await logIn(page, 'not-the-token');
  await page.locator('#login-error').filter({ hasText: 'neither the read token' }).waitFor({ timeout: 15000 });
  check(true, 'a wrong token is refused on the page: ' + await page.locator('#login-error').textContent());
  await logIn(page, token);
  await page.locator(`#grid .tile[data-mac="${mac}"]`).waitFor({ timeout: 15000 });
  const who = await page.locator('#who').textContent();
  check(who === 'logged in: read', 'the read token shows the fleet, with its worker (' + who + ')');
  check(await page.locator('#actions').isHidden(), 'the read session shows no actions');
  const cookies = await ctx.cookies();
  const c = cookies.find(x => x.name === 'nf_session');
  const visible = await page.evaluate(() => document.cookie);
  check(c && c.httpOnly && c.sameSite === 'Strict' && !visible.includes('nf_session') && c.expires > Date.now() / 1000,
    'the session cookie is HttpOnly, SameSite=Strict, expiring, and the page cannot read it');
  await page.click('#logout');
  await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15000 });
  check(true, 'logging out shows the login form again');
  await logIn(page, admin);
  await page.locator('#actions').waitFor({ state: 'visible', timeout: 15000 });
  const confirms = [];
  page.on('dialog', (d) => { confirms.push(d.message()); d.accept(); });
  await page.click('#view-table');
  await page.locator(`input[aria-label="select ${mac}"]`).check();
  await page.locator('#actions button[data-act="release"]').click();
  await page.locator('#act-result .ok').waitFor({ timeout: 30000 });
  const said = await page.locator('#act-result').textContent();
  check(confirms.length === 1 && confirms[0].startsWith('release 1 worker(s): ' + mac) && said.includes('released'),
    'the admin session releases the ticked worker from the page, after a confirm: ' + said);
} catch (e) {
  fail(e);
} finally {
  await ctx.close();
}
process.exit(failed() ? 1 : 0);
