// Second factors in a real browser: an authenticator app (TOTP codes
// computed here from the secret the page shows) with step-up, and a passkey
// on Chromium's virtual authenticator, used to step up and to log in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { start, personWithRole, logIn, PASSWORD } from './harness.js';

let ctx, base, browser;

before(async () => {
  ctx = await start();
  ({ base, browser } = ctx);
});

after(async () => {
  await ctx?.stop();
});

/// The n-th person holding `role`, with a password.
function person(role, n) {
  const p = ctx.doc.persons.filter((x) => (x.roles || []).some((r) => r.role === role))[n];
  ctx.tilgang(['user', 'set-password', p.user_id], PASSWORD + '\n');
  return p;
}

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const c of s.replace(/[\s=]/g, '')) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/// RFC 6238: HMAC-SHA1, 30-second steps, 6 digits.
function totp(seed, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', seed).update(counter).digest();
  const o = h[h.length - 1] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 1000 / 30);

/// Waits until a step newer than `used` has begun.
async function nextStep(used) {
  while (stepNow() <= used) await new Promise((r) => setTimeout(r, 250));
  return stepNow();
}

test('an authenticator app is enrolled, steps a session up and is removed', async () => {
  assert.ok(personWithRole(ctx.doc, 'Lærer'));
  const teacher = person('Lærer', 0);
  const page = await browser.newPage({ locale: 'da-DK' });
  await logIn(page, base, teacher.user_id);
  await page.waitForURL(`${base}/account`);
  await page.getByRole('link', { name: 'Tilføj godkendelsesapp' }).click();
  await page.waitForURL(`${base}/account/factors/totp`);
  assert.ok(await page.locator('figure svg').count(), 'QR code shown');
  const secret = await page.getAttribute('#totp-secret', 'data-secret');
  const seed = base32Decode(secret);
  const enrolStep = stepNow();
  await page.getByLabel('Koden fra appen (6 cifre)').fill(totp(seed, enrolStep));
  await page.getByRole('button', { name: 'Bekræft og tilføj' }).click();
  await page.waitForSelector('#recovery-codes');
  const codes = await page.locator('#recovery-codes code').allTextContents();
  assert.equal(codes.length, 10);
  await page.getByRole('link', { name: 'Jeg har gemt koderne' }).click();
  await page.waitForURL(`${base}/account`);
  assert.match(await page.textContent('#factors'), /Godkendelsesapp/);

  // Removing needs two factors: the step-up page asks for a code.
  await page.getByRole('button', { name: 'Fjern' }).click();
  await page.waitForURL(/\/login\/step-up\?next=%2Faccount$/);
  const step = await nextStep(enrolStep);
  await page.getByLabel('Kode fra godkendelsesappen').fill(totp(seed, step));
  await page.getByRole('button', { name: 'Fortsæt' }).first().click();
  await page.waitForURL(`${base}/account`);
  await page.getByRole('button', { name: 'Fjern' }).click();
  await page.waitForURL(`${base}/account`);
  assert.match(await page.textContent('#factors'), /ikke tilføjet et ekstra login-trin/);
  await page.close();
});

test('a recovery code steps a session up once', async () => {
  const teacher = person('Lærer', 1);
  const page = await browser.newPage({ locale: 'da-DK' });
  await logIn(page, base, teacher.user_id);
  await page.waitForURL(`${base}/account`);
  await page.goto(`${base}/account/factors/totp`);
  const seed = base32Decode(await page.getAttribute('#totp-secret', 'data-secret'));
  await page.getByLabel('Koden fra appen (6 cifre)').fill(totp(seed, stepNow()));
  await page.getByRole('button', { name: 'Bekræft og tilføj' }).click();
  const codes = await page.locator('#recovery-codes code').allTextContents();
  await page.goto(`${base}/login/step-up?next=/account`);
  await page.getByText('Gendannelseskode', { exact: true }).first().click();
  await page.getByLabel('Gendannelseskode').fill(codes[0]);
  await page.locator('form[action="/login/step-up/recovery"] button').click();
  await page.waitForURL(`${base}/account`);
  assert.match(await page.textContent('#recovery-left'), /^9$/);
  // Lost phone and codes: an operator removes the factors.
  assert.match(ctx.tilgang(['user', 'reset-factors', teacher.user_id]), /1 second factor/);
  await page.reload();
  assert.match(await page.textContent('#factors'), /ikke tilføjet et ekstra login-trin/);
  await page.close();
});

test('a passkey is registered, steps a session up and logs in on its own', async () => {
  const teacher = person('Lærer', 2);
  const page = await browser.newPage({ locale: 'da-DK' });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
  await logIn(page, base, teacher.user_id);
  await page.waitForURL(`${base}/account`);
  await page.getByRole('link', { name: 'Tilføj adgangsnøgle' }).click();
  await page.waitForURL(`${base}/account/factors/passkey`);
  await page.getByLabel('Navn på adgangsnøglen').fill('Bærbar');
  await page.getByRole('button', { name: 'Opret adgangsnøgle' }).click();
  await page.waitForSelector('#recovery-codes');
  await page.getByRole('link', { name: 'Jeg har gemt koderne' }).click();
  await page.waitForURL(`${base}/account`);
  assert.match(await page.textContent('#factors'), /Adgangsnøgle: Bærbar/);

  // Step-up with the passkey.
  await page.goto(`${base}/login/step-up?next=/account`);
  await page.getByRole('button', { name: 'Brug adgangsnøgle' }).click();
  await page.waitForURL(`${base}/account`);
  assert.doesNotMatch(await page.textContent('#factors'), /ikke brugt endnu/);

  // Log out, and in again with the passkey alone.
  await page.getByRole('button', { name: 'Log ud' }).click();
  await page.waitForURL(`${base}/login`);
  assert.match(await page.textContent('#passkey-login h2'), /Log ind med adgangsnøgle/);
  await page.getByRole('button', { name: 'Brug adgangsnøgle' }).click();
  await page.waitForURL(`${base}/account`);
  assert.match(await page.textContent('h1'), new RegExp(teacher.given_name));
  // Already at two factors: the step-up page goes straight on.
  await page.goto(`${base}/login/step-up?next=/account`);
  await page.waitForURL(`${base}/account`);
  await page.close();
});
