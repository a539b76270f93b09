// Shared set-up for the browser tests: a real tilgang server on a fresh
// SQLite database with a generated school, and Debian's Chromium driven by
// Playwright (playwright-core).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');
export const bin = process.env.TILGANG_BIN || join(root, 'target/debug/tilgang');
export const PASSWORD = 'rolig blæksprutte spiser kanelsnegle';

/// Starts a server with one generated school; returns what tests need:
/// `base`, `browser`, the roster document `doc`, `tilgang(args, input)` to
/// run the CLI on the same database, and `stop()`.
export async function start() {
  const dir = mkdtempSync(join(tmpdir(), 'tilgang-browser-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const base = `http://localhost:${port}`;
  const env = {
    ...process.env,
    TILGANG_DATABASE_URL: `sqlite://${join(dir, 't.db')}`,
    TILGANG_MASTER_KEY_PATH: join(dir, 't.key'),
    TILGANG_TEST_POSTGRES_URL: '',
  };
  const tilgang = (args, input) => execFileSync(bin, args, { env, cwd: dir, input, encoding: 'utf8' });
  tilgang(['gen', '--out', 'roster', '--scale', 'school']);
  tilgang(['import', 'roster']);
  const file = readdirSync(join(dir, 'roster'))[0];
  const doc = JSON.parse(readFileSync(join(dir, 'roster', file), 'utf8'));
  const server = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`], { env, cwd: dir, stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const stop = async () => {
    await browser.close();
    server.kill();
  };
  return { base, browser, doc, tilgang, stop };
}

/// The first person in the roster holding `role` (a Danish role name).
export function personWithRole(doc, role) {
  return doc.persons.find((p) => (p.roles || []).some((r) => r.role === role));
}

/// Logs `userId` in through the login form (Danish labels).
export async function logIn(page, base, userId, password = PASSWORD) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Brugernavn').fill(userId);
  await page.getByLabel('Adgangskode').fill(password);
  await page.getByRole('button', { name: 'Log ind' }).click();
}
