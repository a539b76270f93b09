// Card login: submits a card code found in the address's fragment (a
// phone's camera app opened the card's QR code), or read from the camera
// with jsQR. Without this script the typed-code form works on its own.
(function () {
  'use strict';
  var form = document.getElementById('card-form');
  var input = document.getElementById('code');
  var status = document.getElementById('camera-status');
  var button = document.getElementById('camera-start');
  var video = document.getElementById('camera-view');
  if (!form || !input) return;

  // A card's address (…/login/card#CODE) or a bare code.
  function codeOf(text) {
    var c = text;
    var i = text.indexOf('#');
    if (i >= 0) {
      if (i > 0 && !/\/login\/card$/.test(text.slice(0, i))) return null;
      c = text.slice(i + 1);
    }
    try { c = decodeURIComponent(c); } catch (e) { return null; }
    c = c.trim();
    return /^[0-9A-Za-z][0-9A-Za-z -]{10,22}$/.test(c) ? c : null;
  }

  function submit(code) {
    input.value = code;
    // Keep the code out of the history and any later Referer.
    history.replaceState(null, '', location.pathname + location.search);
    form.submit();
  }

  if (location.hash.length > 1) {
    var fromHash = codeOf(location.hash);
    if (fromHash) { submit(fromHash); return; }
  }

  if (!button || !video || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  button.hidden = false;
  var canvas = document.createElement('canvas');
  var ctx = canvas.getContext('2d', { willReadFrequently: true });
  var stream = null;

  function stop() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
  }

  function scan() {
    if (!stream) return;
    if (video.readyState >= 2 && video.videoWidth > 0) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR && window.jsQR(img.data, img.width, img.height, { inversionAttempts: 'dontInvert' });
      var code = found && codeOf(found.data);
      if (code) {
        stop();
        status.textContent = button.getAttribute('data-found');
        submit(code);
        return;
      }
    }
    requestAnimationFrame(scan);
  }

  button.addEventListener('click', function () {
    button.disabled = true;
    navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        status.textContent = button.getAttribute('data-scanning');
        return video.play();
      })
      .then(function () { requestAnimationFrame(scan); })
      .catch(function () {
        stop();
        button.disabled = false;
        status.textContent = button.getAttribute('data-no-camera');
      });
  });
})();
