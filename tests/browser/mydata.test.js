// "Mine data" in a real browser: a pupil signs in to a learning platform
// over OpenID Connect and the platform redeems the code for the pupil's
// data; then the pupil's mother signs in to tilgang and reads, on her
// account's "my data" page, which service received her child's data and
// when. Then a library service exports the school through the data API,
// and the mother reads that too, with the approval it happened under.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, logIn, PASSWORD } from './harness.js';

const CB = 'https://laering.example/cb';
let ctx;

before(async () => {
  ctx = await start();
});

after(async () => {
  await ctx?.stop();
});

/// A pupil and a contact person of theirs with custody.
function pupilAndParent(doc) {
  const c = (doc.contacts || []).find((c) => c.custody);
  assert.ok(c, 'the generated school has a contact person with custody');
  return { pupil: c.pupil, parent: c.contact };
}

test('a parent sees which service read their child\'s data and when', async () => {
  const { pupil, parent } = pupilAndParent(ctx.doc);
  ctx.tilgang(['user', 'set-password', pupil], PASSWORD + '\n');
  ctx.tilgang(['user', 'set-password', parent], PASSWORD + '\n');
  const added = ctx.tilgang(['service', 'add', '--client-id', 'laering', '--name', 'Læringsportalen',
    '--redirect-uri', CB, '--package', 'small']);
  const secret = added.match(/client_secret: (\S+)/)[1];
  // The school approves the small package for the platform.
  const spec = join(mkdtempSync(join(tmpdir(), 'tilgang-spec-')), 'spec.json');
  writeFileSync(spec, JSON.stringify({ purpose: 'Lessons and homework', package: 'small', delivery: 'both',
    locations: ['DK'], retention: '6 months after the roster stops delivering a user', dpa_reference: 'DPA-1' }));
  const sent = ctx.tilgang(['sharing', 'request', '--service', 'laering', '--spec', spec,
    '--institution', ctx.doc.institution.number]);
  ctx.tilgang(['sharing', 'approve', sent.match(/request (\d+)/)[1]]);

  // The child signs in to the platform; the platform's callback is answered
  // here, in the browser, and its back end redeems the code.
  const child = await ctx.browser.newContext({ locale: 'da-DK' });
  const page = await child.newPage();
  let code;
  await page.route(`${CB}**`, (route) => {
    code = new URL(route.request().url()).searchParams.get('code');
    route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: '<p>Velkommen på Læringsportalen</p>' });
  });
  const q = new URLSearchParams({ response_type: 'code', client_id: 'laering', redirect_uri: CB,
    scope: 'openid profile', state: 'st', nonce: 'n' });
  await page.goto(`${ctx.base}/oidc/authorize?${q}`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('Brugernavn').fill(pupil);
  await page.getByLabel('Adgangskode').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log ind' }).click();
  await page.waitForSelector('text=Velkommen på Læringsportalen', { timeout: 8000 }).catch(async (e) => {
    throw new Error(`${page.url()}: ${(await page.textContent('body')).slice(0, 500)}`);
  });
  assert.ok(code, 'the platform got a code');
  const res = await fetch(`${ctx.base}/oidc/token`, {
    method: 'POST',
    headers: {
      authorization: 'Basic ' + Buffer.from(`laering:${secret}`).toString('base64'),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CB }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await child.close();

  // The mother signs in and follows the link from her account page.
  const mother = await ctx.browser.newContext({ locale: 'da-DK' });
  const mp = await mother.newPage();
  await logIn(mp, ctx.base, parent);
  await mp.waitForURL(/\/account/);
  await mp.getByRole('link', { name: 'Se hvilke oplysninger vi har om dig' }).click();
  await mp.waitForURL(/\/account\/data/);
  const kid = ctx.doc.persons.find((p) => p.user_id === pupil);
  const heading = `Om dit barn ${kid.given_name} ${kid.family_name}`;
  const table = mp.locator('section.person', { has: mp.getByRole('heading', { name: heading }) })
    .locator('table.receipts');
  const text = await table.textContent();
  assert.match(text, /Læringsportalen/);
  assert.match(text, /Tjenesten fik oplysningerne/);
  assert.match(text, /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/, 'when');
  assert.match(text, /Navn, brugernavn, skole, klasser og rolle/, 'which data, in words');
  // The download holds the same.
  const [download] = await Promise.all([
    mp.waitForEvent('download'),
    mp.getByRole('link', { name: 'Hent det hele som fil (JSON)' }).click(),
  ]);
  const file = await download.path();
  const data = JSON.parse((await import('node:fs')).readFileSync(file, 'utf8'));
  assert.ok(data.children.some((c) => c.received_by.some((r) => r.client_id === 'laering')));
  await mother.close();

  // Both views are in the audit log.
  const views = ctx.tilgang(['audit', 'search', '--action', 'mydata.viewed']);
  assert.equal(views.trim().split('\n').length, 2);
});

test('after a provider\'s export, a parent sees that the service read their child\'s data', async () => {
  const { pupil, parent } = pupilAndParent(ctx.doc);
  ctx.tilgang(['user', 'set-password', parent], PASSWORD + '\n');
  const added = ctx.tilgang(['service', 'add', '--client-id', 'skolebib', '--name', 'Skolebiblioteket',
    '--grant', 'client-credentials', '--package', 'small']);
  const secret = added.match(/client_secret: (\S+)/)[1];
  const number = ctx.doc.institution.number;
  const spec = join(mkdtempSync(join(tmpdir(), 'tilgang-spec-')), 'spec.json');
  writeFileSync(spec, JSON.stringify({ purpose: 'Library loans', package: 'small', delivery: 'export',
    locations: ['DK'], retention: '6 months after the roster stops delivering a user', dpa_reference: 'DPA-2' }));
  const sent = ctx.tilgang(['sharing', 'request', '--service', 'skolebib', '--spec', spec, '--institution', number]);
  ctx.tilgang(['sharing', 'approve', sent.match(/request (\d+)/)[1]]);

  // The provider's back end takes a service token and exports the school.
  const tok = await fetch(`${ctx.base}/oidc/token`, {
    method: 'POST',
    headers: {
      authorization: 'Basic ' + Buffer.from(`skolebib:${secret}`).toString('base64'),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  assert.equal(tok.status, 200, await tok.clone().text());
  const { access_token } = await tok.json();
  const exp = await fetch(`${ctx.base}/api/v1/institutions/${number}/export`, {
    headers: { authorization: `Bearer ${access_token}` },
  });
  assert.equal(exp.status, 200, await exp.clone().text());
  const body = await exp.json();
  assert.ok(body.persons.some((p) => p.id === pupil), 'the child was in the export');

  // The mother reads on "my data" that the library got her child's data, and when.
  const mother = await ctx.browser.newContext({ locale: 'da-DK' });
  const mp = await mother.newPage();
  await logIn(mp, ctx.base, parent);
  await mp.waitForURL(/\/account/);
  await mp.goto(`${ctx.base}/account/data`);
  const kid = ctx.doc.persons.find((p) => p.user_id === pupil);
  const table = mp.locator('section.person', {
    has: mp.getByRole('heading', { name: `Om dit barn ${kid.given_name} ${kid.family_name}` }),
  }).locator('table.receipts');
  const row = table.locator('tr', { hasText: 'Skolebiblioteket' }).first();
  const text = await row.textContent();
  assert.match(text, /samlet udtræk/, 'what happened, in words');
  assert.match(text, /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/, 'when');
  assert.match(text, /godkendte det \(version 1/, 'under which approval');
  await mother.close();
});
