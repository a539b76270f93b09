// Login in a real browser: Playwright (playwright-core) drives Debian's
// Chromium against a real tilgang server with a generated school.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, personWithRole, logIn, PASSWORD } from './harness.js';

let ctx, base, browser, teacher;

before(async () => {
  ctx = await start();
  ({ base, browser } = ctx);
  teacher = personWithRole(ctx.doc, 'Lærer');
  ctx.tilgang(['user', 'set-password', teacher.user_id], PASSWORD + '\n');
});

after(async () => {
  await ctx?.stop();
});

test('a teacher logs in, sees the account page and logs out', async () => {
  const page = await browser.newPage({ locale: 'da-DK' });
  await page.goto(`${base}/login`);
  assert.equal(await page.getAttribute('html', 'lang'), 'da');
  await page.getByLabel('Brugernavn').fill(teacher.user_id);
  await page.getByLabel('Adgangskode').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log ind' }).click();
  await page.waitForURL(`${base}/account`);
  assert.match(await page.textContent('h1'), new RegExp(teacher.given_name));
  await page.getByRole('button', { name: 'Log ud' }).click();
  await page.waitForURL(`${base}/login`);
  await page.goto(`${base}/account`);
  await page.waitForURL(`${base}/login`);
  await page.close();
});

test('a wrong password shows one calm message', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/login?lang=en`);
  await page.getByLabel('User name').fill(teacher.user_id);
  await page.getByLabel('Password').fill('not my password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForSelector('#login-error');
  assert.match(await page.textContent('#login-error'), /wrong, or the account is locked/);
  await page.close();
});

test('a form posted without its CSRF token is refused', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/login`);
  const status = await page.evaluate(async () => {
    const body = new URLSearchParams({ login: 'x', password: 'y', csrf: 'forged' });
    return (await fetch('/login', { method: 'POST', body })).status;
  });
  assert.equal(status, 403);
  await page.close();
});

test('a person changes their password and logs in with the new one', async () => {
  const other = ctx.doc.persons.find((p) => p !== teacher && (p.roles || []).some((r) => r.role === 'Lærer'));
  ctx.tilgang(['user', 'set-password', other.user_id], PASSWORD + '\n');
  const page = await browser.newPage({ locale: 'da-DK' });
  await logIn(page, base, other.user_id);
  await page.waitForURL(`${base}/account`);
  await page.getByRole('link', { name: 'Skift adgangskode' }).click();
  const fresh = 'syv søvnige sæler synger om sommeren';
  await page.getByLabel('Nuværende adgangskode').fill(PASSWORD);
  await page.getByLabel('Ny adgangskode', { exact: true }).fill(fresh);
  await page.getByLabel('Skriv den nye adgangskode igen').fill(fresh);
  await page.getByRole('button', { name: 'Skift adgangskode' }).click();
  await page.waitForURL(`${base}/login?changed=1`);
  assert.match(await page.textContent('main'), /adgangskode er skiftet/);
  await logIn(page, base, other.user_id, fresh);
  await page.waitForURL(`${base}/account`);
  await page.close();
});
