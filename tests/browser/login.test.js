// Login in a real browser: Playwright (playwright-core) drives Debian's
// Chromium against a real tilgang server with a generated school.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');
const bin = process.env.TILGANG_BIN || join(root, 'target/debug/tilgang');
const dir = mkdtempSync(join(tmpdir(), 'tilgang-browser-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const base = `http://localhost:${port}`;
const env = {
  ...process.env,
  TILGANG_DATABASE_URL: `sqlite://${join(dir, 't.db')}`,
  TILGANG_MASTER_KEY_PATH: join(dir, 't.key'),
  TILGANG_TEST_POSTGRES_URL: '',
};
const PASSWORD = 'rolig blæksprutte spiser kanelsnegle';
let server, browser, teacher;

function tilgang(args, input) {
  return execFileSync(bin, args, { env, cwd: dir, input, encoding: 'utf8' });
}

before(async () => {
  tilgang(['gen', '--out', 'roster', '--scale', 'school']);
  tilgang(['import', 'roster']);
  const file = readdirSync(join(dir, 'roster'))[0];
  const doc = JSON.parse(readFileSync(join(dir, 'roster', file), 'utf8'));
  teacher = doc.persons.find((p) => (p.roles || []).some((r) => r.role === 'Lærer'));
  tilgang(['user', 'set-password', teacher.user_id], PASSWORD + '\n');
  server = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`], { env, cwd: dir, stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
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
