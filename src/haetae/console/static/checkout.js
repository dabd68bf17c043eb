// The demo merchant's checkout page. Plain JS, no build step.
// Failure text always comes from the server's catalog (error.message / error.next_step);
// this file only holds the page's own labels, which the server renders into #page-data.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  let locale = page.locale;

  const $ = (id) => document.getElementById(id);
  const form = $("checkout-form");
  const numberInput = $("card-number");
  const expiryInput = $("card-expiry");
  const cvcInput = $("card-cvc");
  const cvcField = $("cvc-field");
  const birthInput = $("card-birth");
  const password2Input = $("card-password2");
  const domesticFields = $("domestic-fields");
  const brandBadge = $("card-brand");
  const payButton = $("pay-button");
  const result = $("result");
  const challenge = $("challenge");
  const challengeForm = $("challenge-form");
  const otpInput = $("otp");
  const otpButton = $("otp-button");
  const inboxItems = $("inbox-items");
  const inboxEmpty = $("inbox-empty");

  const t = (key) => page.labels[locale][key] ?? key;

  // --- ids --------------------------------------------------------------------------------

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not (plain http on a LAN).
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function stored(storage, name, make) {
    try {
      let value = storage.getItem(name);
      if (!value) {
        value = make();
        storage.setItem(name, value);
      }
      return value;
    } catch {
      return make(); // storage blocked (private mode): fine for one page view
    }
  }

  // One demo customer per tab, so two visitors never see each other's codes.
  const customerId = stored(sessionStorage, "haetae-demo-customer", () =>
    page.customerPrefix + uuid().replace(/-/g, "").slice(0, 12),
  );
  const deviceId = stored(localStorage, "haetae-demo-device", () => `web-${uuid()}`);
  const newOrderId = () => `order-${uuid().replace(/-/g, "").slice(0, 12)}`;
  let orderId = newOrderId();

  // --- card brand and formatting ------------------------------------------------------------

  const BRAND_NAMES = {
    visa: "Visa",
    mastercard: "Mastercard",
    amex: "Amex",
    jcb: "JCB",
    unionpay: "UnionPay",
  };
  const MAX_DIGITS = { amex: 15, mastercard: 16, domestic: 16 };

  // Mirrors haetae.payments.validation.detect_brand.
  function detectBrand(d) {
    if (!d) return null;
    if (d[0] === "4") return "visa";
    const two = d.length >= 2 ? Number(d.slice(0, 2)) : -1;
    const four = d.length >= 4 ? Number(d.slice(0, 4)) : -1;
    if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return "mastercard";
    if (two === 34 || two === 37) return "amex";
    if (four >= 3528 && four <= 3589) return "jcb";
    if (two === 62) return "unionpay";
    if (d[0] === "9") return "domestic";
    return null;
  }

  const brandName = (brand) => (brand === "domestic" ? t("brand_domestic") : BRAND_NAMES[brand] ?? "");

  function groupNumber(d, brand) {
    const sizes = brand === "amex" ? [4, 6, 5] : [4, 4, 4, 4, 3];
    const parts = [];
    let i = 0;
    for (const size of sizes) {
      if (i >= d.length) break;
      parts.push(d.slice(i, i + size));
      i += size;
    }
    return parts.join(" ");
  }

  function formatExpiry(d, inserting) {
    if (d.length === 1 && inserting && d > "1") d = `0${d}`; // "4" can only be April
    if (d.length > 2) return `${d.slice(0, 2)}/${d.slice(2)}`;
    if (d.length === 2 && inserting) return `${d}/`;
    return d;
  }

  const digitsOf = (text) => text.replace(/\D/g, "");

  /** Keep digits only, reformat, and put the caret back after the same digit. */
  function reformat(input, event, { limit, format, separators }) {
    const value = input.value;
    const caret = input.selectionStart ?? value.length;
    let before = digitsOf(value.slice(0, caret)).length;
    let digits = digitsOf(value);
    const previous = input.dataset.digits ?? "";
    // Backspace over a separator removes the digit in front of it, as people expect.
    if (separators && digits === previous) {
      if (event.inputType === "deleteContentBackward" && before > 0) {
        digits = digits.slice(0, before - 1) + digits.slice(before);
        before -= 1;
      } else if (event.inputType === "deleteContentForward") {
        digits = digits.slice(0, before) + digits.slice(before + 1);
      }
    }
    digits = digits.slice(0, limit(digits));
    before = Math.min(before, digits.length);
    const inserting = (event.inputType ?? "insert").startsWith("insert");
    const formatted = format(digits, inserting);
    input.value = formatted;
    input.dataset.digits = digitsOf(formatted);
    let pos = 0;
    for (let seen = 0; pos < formatted.length && seen < before; pos += 1) {
      if (/\d/.test(formatted[pos])) seen += 1;
    }
    if (before === digits.length) pos = formatted.length; // typing at the end stays at the end
    if (document.activeElement === input) input.setSelectionRange(pos, pos);
  }

  function currentBrand() {
    return detectBrand(digitsOf(numberInput.value));
  }

  function updateBrand() {
    const brand = currentBrand();
    brandBadge.dataset.brand = brand ?? "";
    brandBadge.textContent = brand ? brandName(brand) : "";
    const domestic = brand === "domestic";
    domesticFields.hidden = !domestic;
    cvcField.hidden = domestic;
    cvcInput.placeholder = t(brand === "amex" ? "cvc_hint_amex" : "cvc_hint");
    const cvcMax = brand === "amex" ? 4 : 3;
    if (cvcInput.value.length > cvcMax) cvcInput.value = cvcInput.value.slice(0, cvcMax);
  }

  numberInput.addEventListener("input", (event) => {
    reformat(numberInput, event, {
      limit: (d) => MAX_DIGITS[detectBrand(d)] ?? 19,
      format: (d) => groupNumber(d, detectBrand(d)),
      separators: true,
    });
    updateBrand();
  });
  expiryInput.addEventListener("input", (event) => {
    reformat(expiryInput, event, { limit: () => 4, format: formatExpiry, separators: false });
  });
  const digitsOnly = (input, limit) =>
    input.addEventListener("input", (event) => {
      reformat(input, event, { limit, format: (d) => d, separators: false });
    });
  digitsOnly(cvcInput, () => (currentBrand() === "amex" ? 4 : 3));
  digitsOnly(birthInput, () => 10);
  digitsOnly(password2Input, () => 2);
  digitsOnly(otpInput, () => 6);

  // --- errors and results ------------------------------------------------------------------

  function errorSlot(field) {
    if (!field) return null;
    for (const el of document.querySelectorAll("[data-error-for]")) {
      if (el.dataset.errorFor.split(" ").includes(field)) return el;
    }
    return null;
  }

  function inputFor(field) {
    for (const el of document.querySelectorAll("input[data-field]")) {
      if (el.dataset.field.split(" ").includes(field)) return el;
    }
    return null;
  }

  function clearErrors(scope = document) {
    for (const el of scope.querySelectorAll("[data-error-for]")) el.textContent = "";
    for (const el of scope.querySelectorAll("input[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showFieldError(error) {
    const slot = errorSlot(error.field);
    if (!slot) return false;
    slot.textContent = error.message;
    const input = inputFor(error.field);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    return true;
  }

  // Editing a field clears its own error.
  for (const input of document.querySelectorAll("input[data-field]")) {
    input.addEventListener("input", () => {
      if (!input.hasAttribute("aria-invalid")) return;
      input.removeAttribute("aria-invalid");
      for (const field of input.dataset.field.split(" ")) {
        const slot = errorSlot(field);
        if (slot) slot.textContent = "";
      }
    });
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatMoney(amount, currency) {
    if (amount === page.amount && currency === page.currency) return page.amountText[locale];
    return `${currency} ${amount.toLocaleString(locale === "ko" ? "ko-KR" : "en-US")}`;
  }

  let shownResult = null; // re-rendered when the language changes

  function showResult(kind, render) {
    result.replaceChildren();
    result.className = `panel result is-${kind}`;
    render(result);
    result.hidden = false;
  }

  function renderApproved(data) {
    showResult("approved", (box) => {
      box.append(el("div", "result-icon", "✓"), el("h2", "result-title", t("approved_title")));
      const list = el("dl", "result-details");
      const rows = [
        ["approved_amount", formatMoney(data.amount, data.currency)],
        ["approved_card", data.card ? `${brandName(data.card.brand)} ${data.card.masked}` : ""],
        ["approved_code", data.approval_code ?? ""],
      ];
      for (const [label, value] of rows) {
        const row = el("div", "result-row");
        row.append(el("dt", "", t(label)), el("dd", "", value));
        list.append(row);
      }
      const again = el("button", "btn ghost", t("new_order"));
      again.type = "button";
      again.addEventListener("click", startNewOrder);
      box.append(list, again);
    });
    shownResult = { kind: "approved", data };
  }

  function renderFailure(error) {
    showResult("error", (box) => {
      box.append(el("div", "result-icon", "!"), el("h2", "result-title", error.message));
      if (error.next_step) box.append(el("p", "result-next", error.next_step));
    });
    shownResult = { kind: "error" };
  }

  function renderNetworkError() {
    showResult("error", (box) => {
      box.append(el("div", "result-icon", "!"), el("h2", "result-title", t("network")));
    });
    shownResult = { kind: "network" };
  }

  function hideResult() {
    result.hidden = true;
    result.replaceChildren();
    shownResult = null;
  }

  function handleFailure(data) {
    const error = data && data.error;
    if (!error) {
      renderNetworkError();
      return;
    }
    showFieldError(error);
    renderFailure(error);
  }

  function startNewOrder() {
    form.reset();
    for (const input of form.querySelectorAll("input")) input.dataset.digits = "";
    clearErrors();
    hideResult();
    challenge.hidden = true;
    orderId = newOrderId();
    updateBrand();
    numberInput.focus();
  }

  // --- requests ----------------------------------------------------------------------------

  async function postJson(url, body, headers = {}) {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "Accept-Language": locale,
        ...headers,
      },
      body,
    });
    return { status: response.status, data: await response.json() };
  }

  function buildPayment() {
    const exp = digitsOf(expiryInput.value);
    const card = {
      number: digitsOf(numberInput.value),
      // Incomplete parts are sent as out-of-range values so the server names the field.
      exp_month: exp.length >= 2 ? Number(exp.slice(0, 2)) : 0,
      exp_year: exp.length >= 4 ? Number(exp.slice(2, 4)) : -1,
    };
    if (currentBrand() === "domestic") {
      if (birthInput.value) card.birth_or_business_no = digitsOf(birthInput.value);
      if (password2Input.value) card.password_2digits = digitsOf(password2Input.value);
    } else if (cvcInput.value) {
      card.cvc = digitsOf(cvcInput.value);
    }
    return {
      amount: page.amount,
      currency: page.currency,
      order_id: orderId,
      customer_id: customerId,
      card,
      device: { id: deviceId },
    };
  }

  function setBusy(button, busy, label) {
    button.disabled = busy;
    button.setAttribute("aria-busy", busy ? "true" : "false");
    if (label) button.textContent = label;
  }

  const payLabel = () => t("pay").replace("{amount}", page.amountText[locale]);

  // The same body after a network error is retried under the same key, so a payment that
  // did reach the server is answered from the stored result instead of charged twice.
  let unanswered = null;
  let paymentId = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (payButton.disabled) return;
    clearErrors();
    hideResult();
    challenge.hidden = true;
    const body = JSON.stringify(buildPayment());
    const key = unanswered && unanswered.body === body ? unanswered.key : uuid();
    unanswered = { body, key };
    setBusy(payButton, true, t("paying"));
    let reply;
    try {
      reply = await postJson("/console/checkout/payments", body, { "Idempotency-Key": key });
    } catch {
      setBusy(payButton, false, payLabel());
      renderNetworkError();
      return;
    }
    unanswered = null;
    setBusy(payButton, false, payLabel());
    const { data } = reply;
    if (data.status === "approved") {
      renderApproved(data);
      result.focus();
    } else if (data.status === "challenge_required" && !data.error) {
      paymentId = data.id;
      otpInput.value = "";
      otpInput.dataset.digits = "";
      challenge.hidden = false;
      otpInput.focus();
      refreshInbox();
    } else {
      handleFailure(data);
    }
  });

  challengeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (otpButton.disabled || !paymentId) return;
    clearErrors(challenge);
    setBusy(otpButton, true);
    let reply;
    try {
      reply = await postJson(
        `/console/checkout/payments/${encodeURIComponent(paymentId)}/challenge`,
        JSON.stringify({ otp: digitsOf(otpInput.value) }),
      );
    } catch {
      setBusy(otpButton, false);
      renderNetworkError();
      return;
    }
    setBusy(otpButton, false);
    const { data } = reply;
    if (data.status === "approved") {
      challenge.hidden = true;
      hideResult();
      renderApproved(data);
      result.focus();
    } else if (data.error && (!data.status || data.status === "challenge_required")) {
      // Still waiting for the code (wrong code, or a malformed one): answer at the field.
      errorSlot("otp").textContent = [data.error.message, data.error.next_step].join(" ");
      otpInput.setAttribute("aria-invalid", "true");
      otpInput.select();
    } else {
      challenge.hidden = true;
      handleFailure(data);
    }
  });

  // --- demo inbox --------------------------------------------------------------------------

  function withCodeHighlighted(text) {
    const body = el("p", "inbox-body");
    for (const part of text.split(/(\b\d{6}\b)/)) {
      body.append(/^\d{6}$/.test(part) ? el("strong", "inbox-code", part) : document.createTextNode(part));
    }
    return body;
  }

  async function refreshInbox() {
    let data;
    try {
      const response = await fetch(`/console/demo/inbox/${encodeURIComponent(customerId)}`, {
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      data = await response.json();
    } catch {
      return; // the demo box is a convenience; the checkout does not depend on it
    }
    inboxItems.replaceChildren();
    for (const item of data.items) {
      const li = el("li", "inbox-item");
      const time = el("time", "inbox-time");
      const when = new Date(item.created_at);
      time.dateTime = item.created_at;
      time.textContent = when.toLocaleTimeString(locale === "ko" ? "ko-KR" : "en-GB");
      const head = el("div", "inbox-item-head");
      head.append(el("strong", "inbox-title", item.title), time);
      li.append(head, withCodeHighlighted(item.body));
      inboxItems.append(li);
    }
    inboxEmpty.hidden = data.items.length > 0;
  }

  $("inbox-refresh").addEventListener("click", refreshInbox);

  // --- language ----------------------------------------------------------------------------

  function applyLocale(next) {
    locale = next;
    document.documentElement.lang = next;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
      node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
    }
    for (const node of document.querySelectorAll("[data-amount]")) node.textContent = page.amountText[locale];
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", button.dataset.lang === next ? "true" : "false");
    }
    expiryInput.placeholder = t("expiry_hint");
    birthInput.placeholder = t("birth_hint");
    if (!payButton.disabled) payButton.textContent = payLabel();
    document.title = `${t("page_title")} · ${t("shop_name")}`;
    document.querySelector(".logo").href = `/?lang=${next}`;
    updateBrand();
    if (shownResult && shownResult.kind === "approved") renderApproved(shownResult.data);
    if (shownResult && shownResult.kind === "network") renderNetworkError();
    const url = new URL(window.location.href);
    url.searchParams.set("lang", next);
    history.replaceState(null, "", url);
  }

  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => applyLocale(button.dataset.lang));
  }

  updateBrand();
  refreshInbox();
})();
