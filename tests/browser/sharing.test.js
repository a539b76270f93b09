// Sharing in a real browser, issue 5's story: a provider's person (a
// portal login the operator made) registers a service and asks the school
// for the small package naming two sub-processors; the school's leader sees
// the request and approves; the provider raises it to medium and adds a
// sub-processor; the leader sees the change marked and approves; the leader
// revokes, and the service loses access at once: a new OpenID Connect
// login carries only the minimal package's claims. Then licences: the
// leader grants the teacher a licence to a service that needs one on the
// licence page, and the teacher's login is let through, until withdrawn.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, personWithRole, logIn, PASSWORD } from './harness.js';

const CB = 'https://matte.example/cb';
let ctx, base, number, leader, teacher;

before(async () => {
  ctx = await start();
  ({ base } = ctx);
  number = ctx.doc.institution.number;
  leader = personWithRole(ctx.doc, 'Leder') || personWithRole(ctx.doc, 'Ledelse');
  teacher = personWithRole(ctx.doc, 'Lærer');
  assert.ok(leader && teacher, 'the generated school has a leader and a teacher');
  ctx.tilgang(['user', 'set-password', leader.user_id], PASSWORD + '\n');
  ctx.tilgang(['user', 'set-password', teacher.user_id], PASSWORD + '\n');
});

after(async () => {
  await ctx?.stop();
});

/// The ID token claims of a new login of the teacher to the service.
async function teacherLogin(clientId, secret) {
  const context = await ctx.browser.newContext({ locale: 'da-DK' });
  const page = await context.newPage();
  let code;
  await page.route(`${CB}**`, (route) => {
    code = new URL(route.request().url()).searchParams.get('code');
    route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: '<p>Velkommen til Matte</p>' });
  });
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: CB,
    scope: 'openid profile email', state: 'st', nonce: 'n' });
  await page.goto(`${base}/oidc/authorize?${q}`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('Brugernavn').fill(teacher.user_id);
  await page.getByLabel('Adgangskode').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log ind' }).click();
  await page.waitForSelector('text=Velkommen til Matte', { timeout: 8000 }).catch(async () => {
    throw new Error(`${page.url()}: ${(await page.textContent('body')).slice(0, 500)}`);
  });
  await context.close();
  const res = await fetch(`${base}/oidc/token`, {
    method: 'POST',
    headers: {
      authorization: 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64'),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CB }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json();
  const payload = body.id_token.split('.')[1];
  return { claims: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')), accessToken: body.access_token };
}

/// GET /api/v1/users/{userId} with a client-credentials token of the
/// service: `{ status, body }`.
async function apiUser(clientId, secret, userId) {
  const tok = await fetch(`${base}/oidc/token`, {
    method: 'POST',
    headers: {
      authorization: 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64'),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  assert.equal(tok.status, 200, await tok.clone().text());
  const { access_token: token } = await tok.json();
  const res = await fetch(`${base}/api/v1/users/${encodeURIComponent(userId)}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: await res.json() };
}

/// Fills sub-processor row `n` of the request form.
async function subProcessor(page, n, name, country) {
  const values = { name, cvr: '12345678', address: 'Havnegade 1, 1058 København K', task: 'Hosting',
    data: 'Navne og klasser', country, protection: 'Krypteret i hvile og under overførsel' };
  for (const [field, v] of Object.entries(values)) {
    await page.locator(`[name="sub.${n}.${field}"]`).fill(v);
  }
}

/// The leader's sharing page, with the pending request of the service.
async function leaderSees(page, clientId) {
  await page.goto(`${base}/staff/${number}/sharing`);
  const pending = page.locator(`#pending-${clientId}`);
  await pending.waitFor();
  return pending;
}

test('a provider asks, the school approves a raise it sees marked, revokes, and the service loses access', async () => {
  // The operator registers the provider and makes a portal login for it.
  const added = ctx.tilgang(['provider', 'add', '--name', 'Matteforlaget A/S', '--cvr', '87654321',
    '--contact', 'kontakt@matte.example', '--security-contact', 'security@matte.example']);
  const providerId = added.match(/Provider (\d+) registered/)[1];
  const made = ctx.tilgang(['provider', 'user', 'add', providerId, '--name', 'Sofie Berg',
    '--email', 'sofie@matte.example']);
  const userId = made.match(/Provider login (\S+) made/)[1];
  const code = made.match(/Activation code: (\S+)/)[1];

  // She chooses her password with the activation code and logs in.
  const provider = await ctx.browser.newContext({ locale: 'da-DK' });
  const pp = await provider.newPage();
  await pp.goto(`${base}/activate`);
  const chosen = 'matematik for alle elever hver dag';
  await pp.getByLabel('Aktiveringskode').fill(code);
  await pp.getByLabel('Ny adgangskode').fill(chosen);
  await pp.getByLabel('Skriv adgangskoden igen').fill(chosen);
  await pp.getByRole('button', { name: 'Gem adgangskode' }).click();
  await pp.waitForURL(/\/login\?activated=1/);
  await logIn(pp, base, userId, chosen);
  await pp.waitForURL(/\/account/);
  await pp.goto(`${base}/provider`);
  assert.match(await pp.textContent('h1'), /Udbyderportal: Matteforlaget A\/S/);

  // She registers the service; the secret is shown once.
  await pp.getByRole('link', { name: 'Registrér en tjeneste' }).click();
  await pp.getByLabel('Tjenestens navn').fill('Matte for alle');
  await pp.getByLabel("Redirect-URI'er (én pr. linje)").fill(CB);
  // Client credentials too: the service reads the data API with them.
  await pp.locator('input[name="grant"][value="client_credentials"]').check();
  await pp.getByRole('button', { name: 'Registrér', exact: true }).click();
  const clientId = (await pp.textContent('#client-id')).trim();
  const secret = (await pp.textContent('#client-secret')).trim();
  assert.match(clientId, /^matte-for-alle-/);

  // She asks the school for the small package with two sub-processors; a
  // first try without a purpose comes back with the error at the field.
  await pp.locator('#ask-now').click();
  await subProcessor(pp, 1, 'Cloudco', 'DK');
  await subProcessor(pp, 2, 'Mailco', 'DK');
  await pp.getByLabel('Hvor data opbevares', { exact: false }).fill('DK');
  await pp.getByLabel('Løfte om sletning').fill('Slettes senest 6 måneder efter, at skolen ikke længere leverer brugeren');
  await pp.getByLabel('Databehandleraftale').fill('DBA-2026-17');
  await pp.locator('#institution').fill(number);
  await pp.getByRole('button', { name: 'Send anmodningen' }).click();
  await pp.waitForSelector('#error-purpose');
  await pp.locator('#purpose').fill('Eleverne øver matematik på deres eget niveau');
  await pp.getByRole('button', { name: 'Send anmodningen' }).click();
  await pp.waitForSelector('#notice');
  assert.match(await pp.textContent(`#standing-${clientId}-${number}`), /venter på godkendelse/);

  // Before any approval a login carries only the minimal package.
  assert.equal((await teacherLogin(clientId, secret)).claims.name, undefined);

  // The leader sees the request with both sub-processors and approves.
  const school = await ctx.browser.newContext({ locale: 'da-DK' });
  const sp = await school.newPage();
  await logIn(sp, base, leader.user_id);
  await sp.waitForURL(/\/account/);
  let pending = await leaderSees(sp, clientId);
  const first = await pending.textContent();
  assert.match(first, /Cloudco \(CVR 12345678/);
  assert.match(first, /Mailco \(CVR 12345678/);
  await sp.locator(`#approve-${clientId}`).click();
  await sp.waitForSelector('#notice');
  assert.match(await sp.textContent('#notice'), /godkendt/);
  const small = await teacherLogin(clientId, secret);
  assert.equal(small.claims.name, `${teacher.given_name} ${teacher.family_name}`, JSON.stringify(small.claims));

  // The provider raises it to medium and adds a sub-processor (a third
  // row through "add more", which works without JavaScript).
  await pp.goto(`${base}/provider/services/${clientId}/request`);
  await pp.locator('#purpose').fill('Eleverne øver matematik på deres eget niveau');
  await pp.locator('#package').selectOption('medium');
  await subProcessor(pp, 1, 'Cloudco', 'DK');
  await subProcessor(pp, 2, 'Mailco', 'DK');
  await pp.locator('#more').click();
  await pp.locator('[name="sub.3.name"]').waitFor();
  await subProcessor(pp, 3, 'Backupco', 'DK');
  await pp.getByLabel('Hvor data opbevares', { exact: false }).fill('DK');
  await pp.getByLabel('Løfte om sletning').fill('Slettes senest 6 måneder efter, at skolen ikke længere leverer brugeren');
  await pp.getByLabel('Databehandleraftale').fill('DBA-2026-17');
  await pp.locator('#institution').fill(number);
  await pp.getByRole('button', { name: 'Send anmodningen' }).click();
  await pp.waitForSelector('#notice');
  const standing = await pp.textContent(`#standing-${clientId}-${number}`);
  assert.match(standing, /godkendt \(version 1\)/);
  assert.match(standing, /venter på godkendelse/);

  // The leader sees exactly the change marked, in words, and approves.
  pending = await leaderSees(sp, clientId);
  const marks = await pending.locator('mark.change').allTextContents();
  assert.ok(marks.includes('Nyt: mellem'), marks.join(' | '));
  assert.ok(marks.some((m) => m.startsWith('Nyt: Backupco (CVR')), marks.join(' | '));
  assert.ok(!marks.some((m) => m.includes('Cloudco')), 'unchanged is not marked');
  await sp.locator(`#approve-${clientId}`).click();
  await sp.waitForSelector('#notice');
  const medium = await teacherLogin(clientId, secret);
  assert.ok(medium.claims.name, JSON.stringify(medium.claims));
  // The data API releases the teacher's name while the approval stands.
  const before = await apiUser(clientId, secret, teacher.user_id);
  assert.equal(before.status, 200, JSON.stringify(before.body));
  assert.equal(before.body.given_name, teacher.given_name, JSON.stringify(before.body));

  // The leader revokes: the next login carries only the minimal package.
  await sp.goto(`${base}/staff/${number}/sharing`);
  await sp.locator(`#revoke-reason-${clientId}`).fill('Vi bruger ikke tjenesten mere');
  await sp.locator(`#approved-${clientId}`).getByRole('button', { name: 'Tilbagekald' }).click();
  await sp.waitForSelector('#notice');
  const after = await teacherLogin(clientId, secret);
  assert.equal(after.claims.name, undefined, JSON.stringify(after.claims));
  assert.equal(after.claims.email, undefined);
  assert.notEqual(after.claims.sub, teacher.user_id, 'a pairwise subject, not the user id');
  // The data API, with the service's own token: the name is gone (the
  // person is not found, or comes without the package's personal fields).
  const revoked = await apiUser(clientId, secret, teacher.user_id);
  assert.ok([200, 404].includes(revoked.status), JSON.stringify(revoked));
  const text = JSON.stringify(revoked.body);
  assert.equal(revoked.body.given_name, undefined, text);
  assert.equal(revoked.body.family_name, undefined, text);
  assert.ok(!text.includes(teacher.family_name), text);

  // Both sides see the full history.
  await pp.goto(`${base}/provider`);
  assert.match(await pp.textContent(`#standing-${clientId}-${number}`), /tilbagekaldt: Vi bruger ikke tjenesten mere/);
  await pp.goto(`${base}/provider/services/${clientId}/history/${number}`);
  const history = await pp.textContent('#history');
  for (const action of ['sharing.requested', 'sharing.approved', 'sharing.revoked']) {
    assert.match(history, new RegExp(action.replace('.', '\\.')));
  }
  assert.match(await pp.textContent('#version-2'), /mellem/);
  await sp.goto(`${base}/staff/${number}/sharing/${clientId}`);
  assert.match(await sp.textContent('#history'), /sharing\.revoked/);
  await provider.close();
  await school.close();
});

test('a municipality admin the operator named approves a request for all its institutions at once', async () => {
  const code = ctx.doc.institution.municipality_code;
  assert.ok(code, 'the generated school belongs to a municipality');
  ctx.tilgang(['service', 'add', '--client-id', 'laesefidus', '--name', 'Læsefidus',
    '--redirect-uri', CB, '--package', 'small']);
  const spec = join(mkdtempSync(join(tmpdir(), 'tilgang-spec-')), 'request.json');
  writeFileSync(spec, JSON.stringify({ purpose: 'Læsetræning', package: 'small', delivery: 'lookup',
    filters: {}, sub_processors: [], locations: ['DK'], retention: '6 måneder', dpa_reference: 'DBA-1' }));
  ctx.tilgang(['sharing', 'request', '--service', 'laesefidus', '--spec', spec, '--municipality', code]);
  ctx.tilgang(['user', 'grant-right', teacher.user_id, '--municipality', code, '--right', 'municipality_admin',
    '--reason', 'skoleafdelingen']);

  const context = await ctx.browser.newContext({ locale: 'da-DK' });
  const page = await context.newPage();
  await logIn(page, base, teacher.user_id);
  await page.waitForURL(/\/account/);
  await page.goto(`${base}/staff`);
  await page.locator(`#municipality-${code}`).click();
  const row = page.locator('#pending-laesefidus');
  await row.waitFor();
  assert.match(await row.textContent(), /lille/);
  await page.locator('#approve-all-laesefidus').click();
  await page.waitForSelector('#notice');
  assert.match(await page.textContent('#notice'), /Godkendt for 1 institution/);
  assert.equal(await page.locator('#pending-laesefidus').count(), 0);
  // The school's own page shows the approval the municipality made.
  await page.goto(`${base}/staff/${number}/sharing`);
  await page.locator('#approved-laesefidus').waitFor();
  await context.close();
});

/// A new login of the teacher to the service: `{ code, text }`, the code
/// when the service's callback was reached, else the page's text.
async function teacherTries(clientId) {
  const context = await ctx.browser.newContext({ locale: 'da-DK' });
  const page = await context.newPage();
  let code;
  await page.route(`${CB}**`, (route) => {
    code = new URL(route.request().url()).searchParams.get('code');
    route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: '<p>Velkommen til Læsemester</p>' });
  });
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: CB,
    scope: 'openid profile', state: 'st', nonce: 'n' });
  await page.goto(`${base}/oidc/authorize?${q}`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('Brugernavn').fill(teacher.user_id);
  await page.getByLabel('Adgangskode').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log ind' }).click();
  await page.waitForSelector('text=/Velkommen til Læsemester|ingen licens/', { timeout: 8000 });
  const text = await page.textContent('body');
  await context.close();
  return { code, text };
}

test('the leader grants a licence on the page and the login follows it', async () => {
  ctx.tilgang(['service', 'add', '--client-id', 'laesemester', '--name', 'Læsemester',
    '--redirect-uri', CB, '--package', 'small', '--licence-required']);
  const spec = join(mkdtempSync(join(tmpdir(), 'tilgang-spec-')), 'spec.json');
  writeFileSync(spec, JSON.stringify({ purpose: 'Reading', package: 'small', delivery: 'lookup',
    locations: ['DK'], retention: '6 months after the roster stops delivering a user', dpa_reference: 'DPA-2' }));
  const sent = ctx.tilgang(['sharing', 'request', '--service', 'laesemester', '--spec', spec,
    '--institution', number]);
  ctx.tilgang(['sharing', 'approve', sent.match(/request (\d+)/)[1]]);

  let tried = await teacherTries('laesemester');
  assert.equal(tried.code, undefined);
  assert.match(tried.text, /Du har ingen licens til denne tjeneste/);

  // The leader grants the teacher a licence from today on the page.
  const school = await ctx.browser.newContext({ locale: 'da-DK' });
  const sp = await school.newPage();
  await logIn(sp, base, leader.user_id);
  await sp.waitForURL(/\/account/);
  await sp.goto(`${base}/staff/${number}`);
  await sp.locator('#licences-link').click();
  await sp.waitForURL(/\/licences/);
  await sp.getByLabel('Tjeneste').selectOption('laesemester');
  await sp.getByLabel('En person').check();
  await sp.getByLabel('Personens brugernavn').fill(teacher.user_id);
  await sp.locator('#from').fill(new Date().toISOString().slice(0, 10));
  await sp.getByRole('button', { name: 'Giv licens' }).click();
  await sp.waitForSelector('#notice');
  assert.match(await sp.textContent('#notice'), /Licensen er givet/);
  const row = sp.locator('#licences tbody tr').first();
  assert.match(await row.textContent(), /Læsemester.*En person.*gælder nu/s);

  tried = await teacherTries('laesemester');
  assert.ok(tried.code, tried.text.slice(0, 300));

  // Withdrawn: the next login is refused again.
  await row.getByRole('button', { name: 'Træk tilbage' }).click();
  await sp.waitForSelector('#notice');
  assert.match(await sp.textContent('#notice'), /trukket tilbage/);
  tried = await teacherTries('laesemester');
  assert.equal(tried.code, undefined);
  await school.close();
});
