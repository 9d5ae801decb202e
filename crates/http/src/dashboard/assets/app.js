// AgentVista dashboard: plain JavaScript over the JSON API. Unsafe requests carry the
// session's CSRF token from <meta name="csrf-token">.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { /* 204 and friends */ }
  return { ok: response.ok, status: response.status, data };
}

function showError(element, result) {
  element.textContent = result.data?.message ?? `The request failed (HTTP ${result.status}).`;
  element.hidden = false;
}

function onSubmit(id, handler) {
  const form = document.getElementById(id);
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    try { await handler(form); } finally { if (button) button.disabled = false; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  onSubmit("setup-form", async (form) => {
    const result = await api("POST", "/api/v1/setup/", {
      account: form.account.value, email: form.email.value, password: form.password.value,
    });
    if (result.ok) location.assign("/settings/api-keys");
    else showError(document.getElementById("setup-error"), result);
  });

  onSubmit("login-form", async (form) => {
    const result = await api("POST", "/api/v1/auth/login/", {
      email: form.email.value, password: form.password.value,
    });
    if (result.ok) location.assign("/settings/api-keys");
    else showError(document.getElementById("login-error"), result);
  });

  document.getElementById("logout")?.addEventListener("click", async () => {
    await api("POST", "/api/v1/auth/logout/");
    location.assign("/login");
  });

  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }

  // Settings → API Keys
  const createDialog = document.getElementById("create-key");
  document.getElementById("open-create-key")?.addEventListener("click", () => {
    document.getElementById("create-key-error").hidden = true;
    createDialog.showModal();
    document.getElementById("key-name").focus();
  });
  onSubmit("create-key-form", async (form) => {
    const error = document.getElementById("create-key-error");
    const scopes = [...form.querySelectorAll('input[name="scopes"]:checked')].map((c) => c.value);
    if (!form.name.value.trim()) {
      showError(error, { status: 400, data: { message: "Give the key a name." } });
      form.name.focus();
      return;
    }
    if (scopes.length === 0) {
      showError(error, { status: 400, data: { message: "Select at least one scope." } });
      return;
    }
    const body = { name: form.name.value, scopes };
    const expires = form.expires.value.trim();
    if (expires && !/^\d{4}-\d{2}-\d{2}$/.test(expires)) {
      showError(error, { status: 400, data: { message: "Write the expiry date as YYYY-MM-DD (UTC), or leave it empty." } });
      form.expires.focus();
      return;
    }
    if (expires) body.expires_at = `${expires}T23:59:59Z`;
    const rate = form.rate.value.trim();
    if (rate && !/^[1-9][0-9]{0,6}$/.test(rate)) {
      showError(error, { status: 400, data: { message: "Write the rate limit as a whole number of requests a second, or leave it empty." } });
      form.rate.focus();
      return;
    }
    if (rate) body.rate_limit = { per_second: Number(rate), burst: Number(rate) };
    const result = await api("POST", "/api/v1/me/api-keys/", body);
    if (!result.ok) { showError(error, result); return; }
    createDialog.close();
    document.getElementById("new-key").textContent = result.data.key;
    document.getElementById("copy-status").textContent = "";
    document.getElementById("key-created").showModal();
  });
  document.getElementById("copy-key")?.addEventListener("click", async () => {
    const key = document.getElementById("new-key").textContent;
    const status = document.getElementById("copy-status");
    try {
      await navigator.clipboard.writeText(key);
      status.textContent = "Copied to the clipboard.";
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(document.getElementById("new-key"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
  const keyCreated = document.getElementById("key-created");
  keyCreated?.addEventListener("close", () => {
    // The key leaves the page with the dialog.
    document.getElementById("new-key").textContent = "";
    location.reload();
  });
  document.getElementById("close-key-created")?.addEventListener("click", () => keyCreated.close());

  const rollDialog = document.getElementById("roll-key");
  let rolling = null;
  for (const button of document.querySelectorAll("button[data-roll]")) {
    button.addEventListener("click", () => {
      rolling = button.dataset.roll;
      document.getElementById("roll-prefix").textContent = button.dataset.rollPrefix;
      document.getElementById("roll-error").hidden = true;
      rollDialog.showModal();
      document.getElementById("roll-grace").focus();
    });
  }
  document.getElementById("confirm-roll")?.addEventListener("click", async () => {
    const grace = Number(document.getElementById("roll-grace").value);
    const result = await api("POST", `/api/v1/me/api-keys/${rolling}/roll/`, { grace_seconds: grace });
    if (!result.ok) { showError(document.getElementById("roll-error"), result); return; }
    rollDialog.close();
    // The new key, shown once, in the same dialog as a created one (the page reloads on close).
    document.getElementById("new-key").textContent = result.data.key;
    document.getElementById("copy-status").textContent = "";
    document.getElementById("key-created").showModal();
  });

  const revokeDialog = document.getElementById("revoke-key");
  let revoking = null;
  for (const button of document.querySelectorAll("button[data-revoke]")) {
    button.addEventListener("click", () => {
      revoking = button.dataset.revoke;
      document.getElementById("revoke-prefix").textContent = button.dataset.prefix;
      document.getElementById("revoke-error").hidden = true;
      revokeDialog.showModal();
    });
  }
  document.getElementById("confirm-revoke")?.addEventListener("click", async () => {
    const result = await api("DELETE", `/api/v1/me/api-keys/${revoking}/`);
    if (result.ok) location.reload();
    else showError(document.getElementById("revoke-error"), result);
  });

  // Settings → Billing
  for (const button of document.querySelectorAll("button[data-choose-plan]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const result = await api("PUT", "/api/v1/me/billing/plan/", { plan: button.dataset.choosePlan });
      if (result.ok) location.reload();
      else { button.disabled = false; showError(document.getElementById("plan-error"), result); }
    });
  }
  onSubmit("spend-cap-form", async (form) => {
    const error = document.getElementById("spend-cap-error");
    const text = form.spend_cap.value.trim();
    const dollars = Number(text);
    if (text !== "" && !(dollars >= 0)) {
      showError(error, { status: 400, data: { message: "Enter an amount of at least 0, or leave it empty." } });
      return;
    }
    const cents = text === "" ? null : Math.round(dollars * 100);
    const result = await api("PUT", "/api/v1/me/billing/spend-cap/", { spend_cap_cents: cents });
    if (result.ok) location.reload();
    else showError(error, result);
  });
});
