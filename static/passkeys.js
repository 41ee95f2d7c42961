// Passkey ceremonies (WebAuthn) for /account/security and the second sign-in step.
// The server makes the options and checks the answers (py_webauthn); this file only carries
// them between the page and the browser's authenticator. No inline script: CSP.
(function () {
  "use strict";

  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || "Something went wrong; try again."); }
        return data;
      });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: toBytes(c.id), transports: c.transports };
    });
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  // A PublicKeyCredential as the JSON py_webauthn reads (binary fields in base64url).
  function credentialJSON(credential, response) {
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined
    };
  }

  function registrationJSON(credential) {
    var r = credential.response;
    return credentialJSON(credential, {
      clientDataJSON: toText(r.clientDataJSON),
      attestationObject: toText(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : []
    });
  }

  function assertionJSON(credential) {
    var r = credential.response;
    return credentialJSON(credential, {
      clientDataJSON: toText(r.clientDataJSON),
      authenticatorData: toText(r.authenticatorData),
      signature: toText(r.signature),
      userHandle: toText(r.userHandle)
    });
  }

  function wire(box, ceremony) {
    var button = box.querySelector("[data-passkey-button]");
    var error = box.querySelector("[data-passkey-error]");
    if (!window.PublicKeyCredential) {
      error.textContent = "This browser cannot use passkeys.";
      error.hidden = false;
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () {
      error.hidden = true;
      button.disabled = true;
      ceremony(box).then(function (data) {
        window.location.assign(data.redirect);
      }).catch(function (problem) {
        error.textContent = problem && problem.name === "NotAllowedError"
          ? "The passkey request was cancelled or timed out."
          : (problem && problem.message) || "The passkey did not work; try again.";
        error.hidden = false;
        button.disabled = false;
      });
    });
  }

  function register(box) {
    var csrf = box.dataset.csrf;
    return post(box.dataset.optionsUrl, csrf).then(function (options) {
      return navigator.credentials.create({ publicKey: creationOptions(options) });
    }).then(function (credential) {
      var name = box.querySelector("[data-passkey-name]");
      return post(box.dataset.finishUrl, csrf, {
        name: name ? name.value : "",
        credential: registrationJSON(credential)
      });
    });
  }

  function signIn(box) {
    var csrf = box.dataset.csrf;
    return post(box.dataset.optionsUrl, csrf).then(function (options) {
      return navigator.credentials.get({ publicKey: requestOptions(options) });
    }).then(function (credential) {
      return post(box.dataset.finishUrl, csrf, { credential: assertionJSON(credential) });
    });
  }

  document.querySelectorAll("[data-passkey-register]").forEach(function (box) { wire(box, register); });
  document.querySelectorAll("[data-passkey-sign-in]").forEach(function (box) { wire(box, signIn); });
})();
