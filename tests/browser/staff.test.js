// Staff pages and login cards in a real browser: a teacher unlocks a
// locked pupil, issues an activation code, and prints the class's QR login
// cards; the test decodes a printed card's QR code in node (jsQR on a PNG
// screenshot), opens it as a phone would, types a card's code, and shows
// the card to the login page's camera view (Chromium's fake camera playing
// a Y4M video of the card; MJPEG input gave Chromium 2×2 frames).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import { chromium } from 'playwright-core';
import { start, personWithRole, logIn, PASSWORD } from './harness.js';

let ctx, base, browser, teacher, number, pupils;

before(async () => {
  ctx = await start();
  ({ base, browser } = ctx);
  teacher = personWithRole(ctx.doc, 'Lærer');
  number = ctx.doc.institution.number;
  ctx.tilgang(['user', 'set-password', teacher.user_id], PASSWORD + '\n');
  // Pupils of one class, so the class's cards include them all.
  const isPupil = (p) => (p.roles || []).some((r) => r.role === 'Elev' && r.main_group);
  const first = ctx.doc.persons.find(isPupil);
  const cls = first.roles.find((r) => r.role === 'Elev').main_group;
  pupils = ctx.doc.persons
    .filter((p) => isPupil(p) && p.roles.some((r) => r.main_group === cls))
    .slice(0, 3)
    .map((p) => ({ ...p, cls }));
  assert.equal(pupils.length, 3);
});

after(async () => {
  await ctx?.stop();
});

/// A page logged in as the teacher, on the institution's staff page,
/// reached through the account page's link.
async function teacherOnStaffPage() {
  const context = await browser.newContext({ locale: 'da-DK' });
  const page = await context.newPage();
  await logIn(page, base, teacher.user_id);
  await page.waitForURL(`${base}/account`);
  await page.getByRole('link', { name: 'Elevernes login (personale)' }).click();
  await page.waitForURL(`${base}/staff?lang=da`);
  await page.locator('#institutions a').first().click();
  await page.waitForURL(new RegExp(`/staff/${number}`));
  return { context, page };
}

test('a locked-out pupil is unlocked by the teacher and logs in', async () => {
  const pupil = pupils[0];
  ctx.tilgang(['user', 'set-password', pupil.user_id], PASSWORD + '\n');
  const pupilContext = await browser.newContext({ locale: 'da-DK' });
  const p = await pupilContext.newPage();
  for (let i = 0; i < 3; i++) {
    await logIn(p, base, pupil.user_id, 'forkert kodeord');
    await p.waitForSelector('#login-error');
  }
  // Locked: even the right password gets the same calm message.
  await logIn(p, base, pupil.user_id);
  await p.waitForSelector('#login-error');
  assert.match(await p.textContent('#login-error'), /midlertidigt låst/);

  const { context, page } = await teacherOnStaffPage();
  const row = page.locator(`#pupil-${pupil.user_id}`);
  assert.match(await row.textContent(), /Låst et stykke tid/);
  await row.getByRole('button', { name: 'Lås op' }).click();
  await page.waitForSelector('#notice');
  assert.match(await page.textContent('#notice'), /låst op/);
  assert.doesNotMatch(await page.locator(`#pupil-${pupil.user_id}`).textContent(), /Låst/);

  await logIn(p, base, pupil.user_id);
  await p.waitForURL(`${base}/account`);
  await context.close();
  await pupilContext.close();
});

test('the teacher issues an activation code; the pupil activates and logs in', async () => {
  const pupil = pupils[1];
  const { context, page } = await teacherOnStaffPage();
  await page.locator(`#pupil-${pupil.user_id}`).getByRole('button', { name: 'Ny aktiveringskode' }).click();
  await page.waitForSelector('#activation-code');
  const code = (await page.textContent('#activation-code')).trim();
  assert.match(code, /^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  assert.match(await page.textContent('#slip'), new RegExp(`${base}/activate`));

  const pupilContext = await browser.newContext({ locale: 'da-DK' });
  const p = await pupilContext.newPage();
  await p.goto(`${base}/activate`);
  const chosen = 'glade giraffer spiser pandekager om natten';
  await p.getByLabel('Aktiveringskode').fill(code.toLowerCase());
  await p.getByLabel('Ny adgangskode').fill(chosen);
  await p.getByLabel('Skriv adgangskoden igen').fill(chosen);
  await p.getByRole('button', { name: 'Gem adgangskode' }).click();
  await p.waitForURL(/\/login\?activated=1/);
  await logIn(p, base, pupil.user_id, chosen);
  await p.waitForURL(`${base}/account`);
  assert.match(await p.textContent('h1'), new RegExp(pupil.given_name));
  await context.close();
  await pupilContext.close();
});

/// Decodes the QR code in a PNG screenshot.
function decodeQr(png) {
  const img = PNG.sync.read(png);
  const found = jsQR(new Uint8ClampedArray(img.data), img.width, img.height);
  assert.ok(found, 'a QR code in the screenshot');
  return found.data;
}

test('a printed card logs the pupil in: its QR code through a camera app, and its typed code', async () => {
  const pupil = pupils[2];
  const { context, page } = await teacherOnStaffPage();
  await page.goto(`${base}/staff/${number}?class=${encodeURIComponent(pupil.cls)}`);
  await page.locator('#print-class').click();
  const button = page.getByRole('button', { name: /gamle kort holder op med at virke/ });
  await button.click();
  const card = page.locator(`#card-${pupil.user_id}`);
  await card.waitFor();
  assert.ok((await page.locator('section.card').count()) >= 3, 'a card per pupil of the class');
  const url = decodeQr(await card.locator('.qr svg').screenshot());
  assert.match(url, new RegExp(`^${base}/login/card#[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$`));
  const printed = (await card.locator('.code').textContent()).trim();
  assert.equal(url.split('#')[1], printed);

  // A phone's camera app opens the address; the page submits the code.
  const phone = await browser.newContext({ locale: 'da-DK' });
  const p = await phone.newPage();
  await p.goto(url);
  await p.waitForURL(`${base}/account`);
  assert.match(await p.textContent('h1'), new RegExp(pupil.given_name));
  await phone.close();

  // Typing the code works too, without any help from the fragment.
  const typed = await browser.newContext({ locale: 'da-DK' });
  const t = await typed.newPage();
  await t.goto(`${base}/login`);
  await t.getByRole('link', { name: 'Har du et login-kort?' }).click();
  await t.getByLabel('Koden fra kortet').fill(printed.replaceAll('-', ' ').toLowerCase());
  await t.getByRole('button', { name: 'Log ind', exact: true }).click();
  await t.waitForURL(`${base}/account`);
  assert.match(await t.textContent('h1'), new RegExp(pupil.given_name));
  await typed.close();
  await context.close();
});

/// A still image as a short grey-scale Y4M video (even dimensions, 4:2:0).
function y4m(img, frames = 10) {
  const w = img.width & ~1;
  const h = img.height & ~1;
  const luma = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * img.width + x) * 4;
      luma[y * w + x] = Math.round(0.299 * img.data[i] + 0.587 * img.data[i + 1] + 0.114 * img.data[i + 2]);
    }
  }
  const chroma = Buffer.alloc((w / 2) * (h / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from('FRAME\n'), luma, chroma]);
  return Buffer.concat([Buffer.from(`YUV4MPEG2 W${w} H${h} F10:1 Ip A1:1 C420jpeg\n`), ...Array(frames).fill(frame)]);
}

test("the login page's camera view reads a card and logs the pupil in", async () => {
  const pupil = pupils[0];
  const { context, page } = await teacherOnStaffPage();
  await page.goto(`${base}/staff/${number}/cards?user=${encodeURIComponent(pupil.user_id)}`);
  await page.getByRole('button', { name: /gamle kort holder op med at virke/ }).click();
  const card = page.locator(`#card-${pupil.user_id}`);
  await card.waitFor();
  // A fake camera that films the printed card (Chromium reads Y4M: a
  // header, then frames of Y, U and V planes).
  const video = join(mkdtempSync(join(tmpdir(), 'tilgang-camera-')), 'card.y4m');
  writeFileSync(video, y4m(PNG.sync.read(await card.screenshot())));
  await context.close();

  const camera = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${video}`],
  });
  try {
    const c = await camera.newContext({ locale: 'da-DK', permissions: ['camera'] });
    const p = await c.newPage();
    await p.goto(`${base}/login/card`);
    await p.getByRole('button', { name: 'Brug kameraet' }).click();
    await p.waitForURL(`${base}/account`, { timeout: 20000 });
    assert.match(await p.textContent('h1'), new RegExp(pupil.given_name));
  } finally {
    await camera.close();
  }
});

test('choosing a class narrows the list in place (htmx) and the address follows', async () => {
  const { context, page } = await teacherOnStaffPage();
  const cls = pupils[0].cls;
  let loads = 0;
  page.on('load', () => loads++);
  await page.getByLabel('Klasse').selectOption(cls);
  await page.waitForURL((u) => u.searchParams.get('class') === cls);
  await page.waitForSelector('#print-class');
  const classes = await page.locator('#pupils tbody tr td:nth-child(3)').allTextContents();
  assert.ok(classes.length > 0 && classes.every((c) => c === classes[0]), classes.join());
  assert.equal(loads, 0, 'no full page load');
  await context.close();
});
