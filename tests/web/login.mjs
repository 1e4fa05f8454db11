/* SPDX-License-Identifier: GPL-2.0-or-later */
// Logs in to netflashd's dashboard from Debian's Chromium (playwright-core)
// as a browser on the LAN would: the page shows the login form, a wrong
// token is refused on the page, the read token shows the fleet; the session
// cookie is HttpOnly and SameSite=Strict; logging out shows the form again.
// Driven by tests/integration/web_login.sh.
//   node login.mjs URL READ_TOKEN MAC PROFILE_DIR
import { chromium } from 'playwright-core';

const [url, token, mac, profile] = process.argv.slice(2);
const say = (s) => process.stdout.write(s + '\n');
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
const check = (ok, what) => { say((ok ? 'PASS: ' : 'FAIL: ') + what); if (!ok) failed = true; };
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(url);
  await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15000 });
  check(await page.locator('#fleet').isHidden(), 'the page opens on its login form, the fleet hidden');
  await page.fill('#login-token', 'not-the-token');
  await page.click('#login-form button');
  await page.locator('#login-error').filter({ hasText: 'neither the read token' }).waitFor({ timeout: 15000 });
  check(true, 'a wrong token is refused on the page: ' + await page.locator('#login-error').textContent());
  await page.fill('#login-token', token);
  await page.click('#login-form button');
  await page.locator(`#workers a[href="#w=${mac}"]`).waitFor({ timeout: 15000 });
  const who = await page.locator('#who').textContent();
  check(who === 'logged in: read', 'the read token shows the fleet, with its worker (' + who + ')');
  const cookies = await ctx.cookies();
  const c = cookies.find(x => x.name === 'nf_session');
  const visible = await page.evaluate(() => document.cookie);
  check(c && c.httpOnly && c.sameSite === 'Strict' && !visible.includes('nf_session') && c.expires > Date.now() / 1000,
    'the session cookie is HttpOnly, SameSite=Strict, expiring, and the page cannot read it');
  await page.click('#logout');
  await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15000 });
  check(true, 'logging out shows the login form again');
} catch (e) {
  say('FAIL: ' + e.message.split('\n')[0]);
  failed = true;
} finally {
  await ctx.close();
}
process.exit(failed ? 1 : 0);
