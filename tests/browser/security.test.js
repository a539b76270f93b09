// Reporting a security problem in a real browser: from the footer link on
// any page to the acknowledgement with a reference.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start } from './harness.js';

let ctx;

before(async () => {
  ctx = await start();
});

after(async () => {
  await ctx?.stop();
});

test('a finder reports a problem from the footer link and gets a reference', async () => {
  const page = await ctx.browser.newPage({ locale: 'da-DK' });
  await page.goto(`${ctx.base}/login`);
  await page.getByRole('link', { name: 'Rapportér et sikkerhedsproblem' }).click();
  await page.waitForURL(/\/security/);
  assert.match(await page.textContent('main'), /politianmelder ikke/);
  await page.getByLabel('Kort beskrivelse').fill('Session cookie survives logout');
  await page.getByLabel('Detaljer').fill('1. Log in. 2. Copy the cookie. 3. Log out. 4. …');
  await page.getByRole('button', { name: 'Send rapporten' }).click();
  await page.waitForSelector('#reference');
  assert.match(await page.textContent('#reference'), /^SR-\d{4}-\d{4}$/);
  const listed = ctx.tilgang(['security-reports']);
  assert.match(listed, /Session cookie survives logout/);
  await page.close();
});
