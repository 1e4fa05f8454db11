/* SPDX-License-Identifier: GPL-2.0-or-later */
// What the browser tests share: Debian's Chromium, headless, driven by
// playwright-core (no browser is downloaded), and PASS/FAIL lines.
import { chromium } from 'playwright-core';

export const say = (s) => process.stdout.write(s + '\n');

// A persistent Chromium context in profile, at viewport ({width, height}).
export function launch(profile, viewport) {
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: viewport || { width: 1280, height: 720 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// Fills the page's login form with token and sends it.
export async function logIn(page, token) {
  await page.fill('#login-token', token);
  await page.click('#login-form button');
}

// check(ok, what) prints PASS or FAIL; failed() says whether one failed.
export function checker() {
  let failed = false;
  return {
    check: (ok, what) => { say((ok ? 'PASS: ' : 'FAIL: ') + what); if (!ok) failed = true; },
    fail: (e) => { say('FAIL: ' + e.message.split('\n')[0]); failed = true; },
    failed: () => failed,
  };
}
