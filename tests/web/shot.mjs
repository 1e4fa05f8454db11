/* SPDX-License-Identifier: GPL-2.0-or-later */
// Saves a screenshot of a page (and optionally a worker's page) in Debian's
// Chromium: node shot.mjs URL PNG PROFILE_DIR [WAIT_SELECTOR]
import { launch } from './browser.mjs';

const [url, png, profile, sel] = process.argv.slice(2);
const ctx = await launch(profile, { width: 1180, height: 560 });
const page = ctx.pages()[0] || await ctx.newPage();
await page.goto(url);
if (sel) await page.locator(sel).first().waitFor({ timeout: 30000 });
await page.waitForTimeout(4500); // the live stream's first update
await page.screenshot({ path: png, fullPage: true });
await ctx.close();
