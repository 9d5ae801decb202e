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

// A browser drops a Secure cookie sent over plain HTTP to any host but localhost: the sign-in
// succeeded on the server, yet the next page would be the login form again, without a word.
// Asking for the session tells the two apart.
async function enterIfCookieKept(error) {
  const session = await api("GET", "/api/v1/auth/session/");
  if (session.ok) { location.assign("/settings/api-keys"); return; }
  if (session.status === 401 && location.protocol === "http:") {
    error.textContent = `Signed in, but this browser refused the session cookie because the page is served over plain HTTP at ${location.host}. Use HTTPS (a TLS proxy listed in server.trusted_proxies), or — for development only — set server.insecure_cookies = true.`;
  } else {
    error.textContent = `Signed in, but the session could not be read (HTTP ${session.status}). Reload the page to try again.`;
  }
  error.hidden = false;
}

// Times are rendered in UTC; shown in the browser's own zone, with UTC kept in the tooltip.
function localTimes(root) {
  const two = (n) => String(n).padStart(2, "0");
  for (const time of root.querySelectorAll("time[datetime]")) {
    const at = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) continue;
    let text = `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${two(at.getHours())}:${two(at.getMinutes())}`;
    if (time.hasAttribute("data-seconds")) text += `:${two(at.getSeconds())}`;
    time.textContent = text;
  }
}

// Each field's problem under the field, all at once; `problems` maps field ids to sentences.
function showFieldErrors(form, problems) {
  for (const element of form.querySelectorAll(".field-error")) {
    const message = problems[element.id.replace(/-error$/, "")];
    element.textContent = message ?? "";
    element.hidden = !message;
    const input = document.getElementById(element.id.replace(/-error$/, ""));
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
  }
  const first = Object.keys(problems)[0];
  if (first) document.getElementById(first)?.focus();
  return Object.keys(problems).length === 0;
}

// Copies `text`: the Clipboard API where the browser allows it, else the selection.
async function copyText(text, source) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents(source);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    return document.execCommand("copy");
  }
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
  localTimes(document);

  onSubmit("setup-form", async (form) => {
    const error = document.getElementById("setup-error");
    error.hidden = true;
    const problems = {};
    const account = form.account.value.trim();
    if (account.length === 0 || [...account].length > 100) problems["setup-account"] = "Account name: 1 to 100 characters.";
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(form.email.value.trim())) problems["setup-email"] = "E-mail: an address such as you@example.com.";
    const password = form.password.value;
    if ([...password].length < 8) problems["setup-password"] = "Password: at least 8 characters.";
    else if (new TextEncoder().encode(password).length > 1024) problems["setup-password"] = "Password: at most 1,024 bytes.";
    if (!showFieldErrors(form, problems)) return;
    const result = await api("POST", "/api/v1/setup/", {
      account: form.account.value, email: form.email.value, password,
    });
    if (result.ok) { await enterIfCookieKept(error); return; }
    // The server's rules are the same; should it still refuse a field, say so in its words.
    const fields = { account: ["setup-account", "Account name"], email: ["setup-email", "E-mail"], password: ["setup-password", "Password"] };
    const [field, detail] = (result.data?.message ?? "").split(/: (.*)/s);
    if (result.status === 400 && fields[field]) {
      showFieldErrors(form, { [fields[field][0]]: `${fields[field][1]}: ${detail}` });
    } else {
      showError(error, result);
    }
  });

  onSubmit("login-form", async (form) => {
    const result = await api("POST", "/api/v1/auth/login/", {
      email: form.email.value, password: form.password.value,
    });
    const error = document.getElementById("login-error");
    if (result.ok) await enterIfCookieKept(error);
    else showError(error, result);
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
    showNewKey(result.data.key);
  });

  // The key shown once: in the dialog, then in the Quick start snippets until the page is
  // left or reloaded. It is kept in this page's memory only.
  const keyCreated = document.getElementById("key-created");
  let newKey = null;
  function showNewKey(key) {
    newKey = key;
    document.getElementById("new-key").textContent = key;
    document.getElementById("copy-status").textContent = "";
    keyCreated.showModal();
  }
  document.getElementById("copy-key")?.addEventListener("click", async () => {
    const shown = document.getElementById("new-key");
    const status = document.getElementById("copy-status");
    status.textContent = await copyText(shown.textContent, shown)
      ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C) to copy.";
  });
  keyCreated?.addEventListener("close", async () => {
    document.getElementById("new-key").textContent = "";
    if (newKey) {
      for (const code of document.querySelectorAll("code[data-with-key]")) {
        code.textContent = code.dataset.withKey.replace("{key}", newKey);
      }
      document.getElementById("quick-start-key").hidden = false;
      newKey = null;
    }
    await refreshKeys();
  });
  document.getElementById("close-key-created")?.addEventListener("click", () => keyCreated.close());

  // The key list, read again from the server without reloading the page (a reload would
  // drop the new key from the snippets, as it should, but too early).
  async function refreshKeys() {
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) { location.reload(); return; }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const list = fresh.getElementById("keys-list");
    if (!list) { location.reload(); return; }
    localTimes(list);
    document.getElementById("keys-list").replaceWith(document.adoptNode(list));
  }

  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const code = document.getElementById(button.dataset.copy);
      const copied = await copyText(code.textContent, code);
      button.textContent = copied ? "Copied" : "Press Ctrl+C";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }

  // Roll and Revoke buttons live in the key list, which is replaced as a whole.
  const rollDialog = document.getElementById("roll-key");
  const revokeDialog = document.getElementById("revoke-key");
  let rolling = null;
  let revoking = null;
  document.addEventListener("click", (event) => {
    const button = event.target.closest?.("button[data-roll], button[data-revoke]");
    if (!button) return;
    if (button.dataset.roll) {
      rolling = button.dataset.roll;
      document.getElementById("roll-prefix").textContent = button.dataset.rollPrefix;
      document.getElementById("roll-error").hidden = true;
      rollDialog.showModal();
      document.getElementById("roll-grace").focus();
    } else {
      revoking = button.dataset.revoke;
      document.getElementById("revoke-prefix").textContent = button.dataset.prefix;
      document.getElementById("revoke-error").hidden = true;
      revokeDialog.showModal();
    }
  });
  onSubmit("roll-key-form", async (form) => {
    const result = await api("POST", `/api/v1/me/api-keys/${rolling}/roll/`, { grace_seconds: Number(form.grace.value) });
    if (!result.ok) { showError(document.getElementById("roll-error"), result); return; }
    rollDialog.close();
    showNewKey(result.data.key);
  });
  document.getElementById("confirm-revoke")?.addEventListener("click", async () => {
    const result = await api("DELETE", `/api/v1/me/api-keys/${revoking}/`);
    if (!result.ok) { showError(document.getElementById("revoke-error"), result); return; }
    revokeDialog.close();
    await refreshKeys();
  });

  // Settings → Billing: a plan changes only once its differences have been read.
  const switchDialog = document.getElementById("switch-plan");
  let switching = null;
  for (const button of document.querySelectorAll("button[data-choose-plan]")) {
    button.addEventListener("click", () => {
      switching = button;
      document.getElementById("switch-plan-name").textContent = button.dataset.label;
      document.getElementById("switch-plan-events").textContent = button.dataset.events;
      document.getElementById("switch-plan-beyond").textContent = button.dataset.beyond;
      document.getElementById("switch-plan-error").hidden = true;
      const cap = document.getElementById("switch-plan-cap");
      if (cap) cap.hidden = !("overage" in button.dataset);
      switchDialog.showModal();
      document.getElementById("confirm-switch-plan").focus();
    });
  }
  onSubmit("switch-plan-form", async (form) => {
    const error = document.getElementById("switch-plan-error");
    const capBox = document.getElementById("switch-plan-cap");
    let cents = null;
    if (capBox && !capBox.hidden && form.spend_cap.value.trim() !== "") {
      const dollars = Number(form.spend_cap.value.trim());
      if (!(dollars >= 0)) {
        showError(error, { status: 400, data: { message: "Enter a spend cap of at least 0 dollars, or leave it empty." } });
        form.spend_cap.focus();
        return;
      }
      cents = Math.round(dollars * 100);
    }
    const result = await api("PUT", "/api/v1/me/billing/plan/", { plan: switching.dataset.choosePlan });
    if (!result.ok) { showError(error, result); return; }
    if (cents !== null) {
      const capped = await api("PUT", "/api/v1/me/billing/spend-cap/", { spend_cap_cents: cents });
      if (!capped.ok) { showError(error, { status: capped.status, data: { message: `The plan is switched, but the spend cap was not set: ${capped.data?.message ?? `HTTP ${capped.status}`}` } }); return; }
    }
    location.reload();
  });
  // Settings → Profile
  onSubmit("password-form", async (form) => {
    const done = document.getElementById("password-changed");
    const error = document.getElementById("password-error");
    done.hidden = true;
    error.hidden = true;
    const problems = {};
    if (form.current_password.value === "") problems["current-password"] = "Current password: type the password you signed in with.";
    const fresh = form.new_password.value;
    if ([...fresh].length < 8) problems["new-password"] = "New password: at least 8 characters.";
    else if (fresh === form.current_password.value) problems["new-password"] = "New password: choose one other than the current password.";
    if (form.confirm_password.value !== fresh) problems["confirm-password"] = "New password, again: the two new passwords differ.";
    if (!showFieldErrors(form, problems)) return;
    const result = await api("PUT", "/api/v1/me/password/", {
      current_password: form.current_password.value, new_password: fresh,
    });
    if (result.ok) {
      form.reset();
      done.hidden = false;
      return;
    }
    const message = result.data?.message ?? "";
    if (result.status === 400 && message.startsWith("current_password:")) {
      showFieldErrors(form, { "current-password": "Current password: that is not the password you signed in with." });
    } else if (result.status === 400 && message.startsWith("new_password:")) {
      showFieldErrors(form, { "new-password": `New password: ${message.replace(/^new_password: /, "")}.` });
    } else {
      showError(error, result);
    }
  });

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
  // The header's account switcher: the session moves, with a new CSRF token, and the page is
  // read again in the other account.
  document.getElementById("account-switch")?.addEventListener("change", async (event) => {
    const result = await api("POST", "/api/v1/auth/switch-account/", { account_id: Number(event.target.value) });
    if (result.ok) location.reload();
    else alert(result.data?.message ?? `Switching failed (HTTP ${result.status}).`);
  });

  // Settings → Members
  const membersError = document.getElementById("members-error");
  for (const select of document.querySelectorAll("select[data-set-role]")) {
    select.addEventListener("change", async () => {
      const result = await api("PATCH", `/api/v1/me/members/${select.dataset.setRole}/`, { role: select.value });
      if (result.ok) location.reload();
      else showError(membersError, result);
    });
  }
  for (const button of document.querySelectorAll("button[data-remove-member]")) {
    button.addEventListener("click", async () => {
      const leaving = button.hasAttribute("data-leave");
      const question = leaving
        ? "Leave this account? You lose access to it at once."
        : `Remove ${button.dataset.email}? Their sessions in this account end at once; the keys they made stay the account's.`;
      if (!confirm(question)) return;
      const id = Number(button.dataset.removeMember);
      // Their keys stay the account's; offer to revoke the live ones they made, on every
      // page of the key list (it answers 100 at most).
      const theirs = [];
      for (let path = leaving ? null : "/api/v1/me/api-keys/?limit=100"; path;) {
        const page = await api("GET", path);
        // Nothing is done on a list that could not be read whole: the offer would leave keys out.
        if (!page.ok) { showError(membersError, page); return; }
        theirs.push(...page.data.data.filter(
          (key) => key.created_by?.user_id === id && key.revoked_at === null));
        const next = page.data.next_cursor;
        path = next ? `/api/v1/me/api-keys/?limit=100&cursor=${encodeURIComponent(next)}` : null;
      }
      const result = await api("DELETE", `/api/v1/me/members/${id}/`);
      if (!result.ok) { showError(membersError, result); return; }
      if (theirs.length > 0 && confirm(`Also revoke the ${theirs.length} key(s) they created (${theirs.map((k) => k.prefix).join(", ")})? Requests with them will fail at once.`)) {
        for (const key of theirs) {
          const revoked = await api("DELETE", `/api/v1/me/api-keys/${key.id}/`);
          if (!revoked.ok) { showError(membersError, revoked); return; }
        }
      }
      location.assign(leaving ? "/" : location.pathname);
    });
  }
  onSubmit("invite-form", async (form) => {
    const error = document.getElementById("invite-error");
    error.hidden = true;
    const result = await api("POST", "/api/v1/me/invitations/", { email: form.email.value, role: form.role.value });
    if (!result.ok) { showError(error, result); return; }
    document.getElementById("invite-link-email").textContent = result.data.email;
    document.getElementById("invite-link-url").textContent = result.data.url;
    document.getElementById("invite-link").hidden = false;
    form.reset();
  });
  document.getElementById("copy-invite-link")?.addEventListener("click", async (event) => {
    if (await copyText(document.getElementById("invite-link-url").textContent, document.getElementById("invite-link-url"))) {
      event.target.textContent = "Copied";
    }
  });
  for (const button of document.querySelectorAll("button[data-revoke-invitation]")) {
    button.addEventListener("click", async () => {
      const result = await api("DELETE", `/api/v1/me/invitations/${button.dataset.revokeInvitation}/`);
      if (result.ok) location.reload();
      else showError(membersError, result);
    });
  }

  // Settings → Sessions
  const sessionsError = document.getElementById("sessions-error");
  for (const button of document.querySelectorAll("button[data-end-session]")) {
    button.addEventListener("click", async () => {
      const result = await api("DELETE", `/api/v1/me/sessions/${button.dataset.endSession}/`);
      if (result.ok) location.reload();
      else showError(sessionsError, result);
    });
  }
  document.getElementById("end-other-sessions")?.addEventListener("click", async () => {
    const result = await api("POST", "/api/v1/me/sessions/end-others/");
    if (result.ok) location.reload();
    else showError(sessionsError, result);
  });

  // The invitation page. A SameSite=Strict cookie is not sent on the navigation from a mail
  // or chat link, but it is on this same-origin call: a person already signed in as the
  // invited e-mail accepts with one click.
  const invitation = document.getElementById("invitation");
  if (invitation) {
    const token = location.pathname.split("/").pop();
    const email = invitation.dataset.email;
    const existing = invitation.hasAttribute("data-existing");
    let csrf = "";
    (async () => {
      if (!existing) return;
      const session = await api("GET", "/api/v1/auth/session/");
      if (session.ok && session.data.user.email === email) {
        csrf = session.data.csrf_token;
        document.getElementById("accept-password-field").hidden = true;
        document.getElementById("invite-sign-in").textContent = `Signed in as ${email}.`;
      }
    })();
    onSubmit("accept-form", async (form) => {
      const error = document.getElementById("accept-error");
      error.hidden = true;
      const send = (body, token) => fetch("/api/v1/invitations/accept/", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify(body),
      }).then(async (r) => ({ ok: r.ok, status: r.status, data: await r.json().catch(() => null) }));
      let result;
      if (existing) {
        if (!csrf) {
          const login = await api("POST", "/api/v1/auth/login/", { email, password: form.password.value });
          if (!login.ok) { showError(error, login); return; }
          csrf = login.data.csrf_token;
        }
        result = await send({ token }, csrf);
      } else {
        result = await send({ token, password: form.password.value }, "");
      }
      if (result.ok) location.assign("/settings/api-keys");
      else showError(error, result);
    });
  }
});
