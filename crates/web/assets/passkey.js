// Passkey ceremonies for tilgang's own pages; no libraries. A form marked
// data-passkey="register|authenticate|login" gets its options from
// data-begin (a POST with the form's CSRF token), asks the browser for a
// credential, puts it in the form's hidden "credential" field and submits
// the form; the server verifies it and answers with a page or a redirect.
'use strict';
(() => {
  const fromB64u = (s) => {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    return Uint8Array.from(b, (c) => c.charCodeAt(0));
  };
  const toB64u = (buf) => {
    const bytes = new Uint8Array(buf);
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const creationOptions = (pk) => ({
    ...pk,
    challenge: fromB64u(pk.challenge),
    user: { ...pk.user, id: fromB64u(pk.user.id) },
    excludeCredentials: (pk.excludeCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) })),
  });
  const requestOptions = (pk) => ({
    ...pk,
    challenge: fromB64u(pk.challenge),
    allowCredentials: (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) })),
  });
  const encode = (cred) => {
    const r = cred.response;
    const response = r.attestationObject
      ? {
          attestationObject: toB64u(r.attestationObject),
          clientDataJSON: toB64u(r.clientDataJSON),
          transports: r.getTransports ? r.getTransports() : undefined,
        }
      : {
          authenticatorData: toB64u(r.authenticatorData),
          clientDataJSON: toB64u(r.clientDataJSON),
          signature: toB64u(r.signature),
          userHandle: r.userHandle ? toB64u(r.userHandle) : null,
        };
    return {
      id: cred.id,
      rawId: toB64u(cred.rawId),
      type: cred.type,
      response,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  };
  const run = async (form) => {
    const kind = form.dataset.passkey;
    const csrf = form.querySelector('input[name=csrf]').value;
    const res = await fetch(form.dataset.begin, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }),
      credentials: 'same-origin',
    });
    if (!res.ok) throw new Error(`begin: ${res.status}`);
    const options = await res.json();
    const cred = kind === 'register'
      ? await navigator.credentials.create({ publicKey: creationOptions(options.publicKey) })
      : await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
    form.querySelector('input[name=credential]').value = JSON.stringify(encode(cred));
    form.submit();
  };
  if (!window.PublicKeyCredential) return;
  for (const el of document.querySelectorAll('[data-needs-js]')) el.hidden = false;
  for (const form of document.querySelectorAll('form[data-passkey]')) {
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const error = form.querySelector('[data-passkey-error]');
      if (error) error.hidden = true;
      run(form).catch(() => {
        if (error) error.hidden = false;
      });
    });
  }
})();
