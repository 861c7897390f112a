// The hookrelay webhook portal. Tenant data is only ever set as text (textContent, DOM nodes),
// never parsed as HTML: descriptions, endpoints, event data and response excerpts are the tenant's.
"use strict";

(() => {
  const TOKEN_STORAGE_KEY = "hookrelay.portal.token";
  const PAGE_SIZE = 20;
  const POLL_INTERVAL_MS = 1000;
  const POLL_LIMIT_MS = 45000;
  const STATUSES = ["pending", "scheduled", "waiting", "delivered", "failed"];
  const PAYLOAD_FORMATS = ["yousign", "subnoto"];
  const CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded"];

  const state = { token: null, readOnly: true, catalog: [] };
  const main = document.getElementById("main");
  const statusLine = document.getElementById("status");

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }
  class LinkExpired extends Error {}

  // The token comes in the URL's fragment (never sent to a server); it is kept for this tab only
  // and taken out of the address bar, so it is neither bookmarked nor shown.
  function takeToken() {
    const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
    if (fromUrl) {
      history.replaceState(null, "", location.pathname + location.search);
    }
    try {
      if (fromUrl) sessionStorage.setItem(TOKEN_STORAGE_KEY, fromUrl);
      return fromUrl || sessionStorage.getItem(TOKEN_STORAGE_KEY);
    } catch {
      return fromUrl; // storage blocked (e.g. a third-party frame): the token lives in memory only
    }
  }

  function forgetToken() {
    state.token = null;
    try {
      sessionStorage.removeItem(TOKEN_STORAGE_KEY);
    } catch {
      // nothing stored
    }
  }

  // A 429 (the team's request limit, or the API's own throttling) is tried again after its Retry-After
  // (1 s when it has none, as API Gateway's own 429 has not), a few times before it is shown.
  const MAX_RETRIES_AFTER_429 = 5;

  function retryAfterMilliseconds(response) {
    const seconds = Number.parseInt(response.headers.get("Retry-After") || "1", 10);
    return 1000 * Math.min(Math.max(Number.isFinite(seconds) ? seconds : 1, 1), 60);
  }

  async function api(method, path, body) {
    if (!state.token) throw new LinkExpired();
    const headers = { Authorization: `Bearer ${state.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    for (let attempt = 0; ; attempt += 1) {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
      if (response.status !== 429 || attempt >= MAX_RETRIES_AFTER_429) break;
      await sleep(retryAfterMilliseconds(response));
    }
    if (response.status === 401) {
      showExpired();
      throw new LinkExpired();
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // ---- DOM helpers: text only ----

  function el(tag, properties = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(properties)) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = String(value);
      else if (name === "className") node.className = value;
      else if (name === "value") node.value = value;
      else if (name === "checked") node.checked = Boolean(value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
    return node;
  }

  // A narrow page (a phone, a small frame) scrolls a wide table sideways rather than break its words.
  function scrolling(table) {
    return el("div", { className: "table-scroll" }, table);
  }

  function dataTable(caption, columns, rows) {
    const header = el("tr", {}, columns.map((name) => el("th", { scope: "col", text: name })));
    return scrolling(
      el("table", {}, el("caption", { text: caption }), el("thead", {}, header), el("tbody", {}, rows)),
    );
  }

  // Machine text (URLs, ids, keys, header values): it may break anywhere, words never do.
  function code(text) {
    return el("code", { text });
  }

  // A JSON body indented as a person reads it; any other body as it is sent.
  function readableBody(body) {
    try {
      return JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      return body;
    }
  }

  // The browser's time zone, as a datetime-local field is read in it: "Europe/Paris, UTC+01:00".
  function localZone(moment) {
    const minutes = -moment.getTimezoneOffset();
    const sign = minutes < 0 ? "-" : "+";
    const pad = (value) => String(Math.floor(Math.abs(value))).padStart(2, "0");
    const offset = `UTC${sign}${pad(minutes / 60)}:${pad(minutes % 60)}`;
    const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
    return name ? `${name}, ${offset}` : offset;
  }

  let uniqueIds = 0;
  function uniqueId(prefix) {
    uniqueIds += 1;
    return `${prefix}-${uniqueIds}`;
  }

  function field(labelText, control, hint) {
    control.id = control.id || uniqueId("field");
    const parts = [el("label", { for: control.id, text: labelText }), control];
    if (hint) {
      const hintId = uniqueId("hint");
      control.setAttribute("aria-describedby", hintId);
      parts.push(el("span", { id: hintId, className: "hint", text: hint }));
    }
    return el("div", { className: "field" }, parts);
  }

  function checkbox(labelText, checked, hint) {
    const input = el("input", { type: "checkbox", id: uniqueId("check"), checked });
    const parts = [input, el("label", { for: input.id, text: labelText })];
    if (hint) {
      const hintId = uniqueId("hint");
      input.setAttribute("aria-describedby", hintId);
      parts.push(el("span", { id: hintId, className: "hint", text: hint }));
    }
    return { input, node: el("div", { className: "check" }, parts) };
  }

  function select(options, selected) {
    return el(
      "select",
      {},
      options.map(([value, text]) => el("option", { value, text, selected: value === selected })),
    );
  }

  function time(iso) {
    if (!iso) return "—";
    const moment = new Date(iso);
    return el("time", { datetime: iso, text: Number.isNaN(moment.getTime()) ? iso : moment.toLocaleString() });
  }

  function badge(text, kind) {
    return el("span", { className: `badge ${kind}`, text });
  }

  function describeList(pairs) {
    return el(
      "dl",
      {},
      pairs.map(([term, value]) => [el("dt", { text: term }), el("dd", {}, value ?? "—")]),
    );
  }

  function announce(text) {
    statusLine.textContent = text;
  }

  function showView(title, ...content) {
    const heading = el("h1", { tabindex: "-1", text: title });
    main.replaceChildren(heading, ...content.flat().filter(Boolean));
    heading.focus();
    document.title = `${title} · Webhooks`;
  }

  function errorBox(error) {
    const box = el("div", { className: "error", role: "alert" }, el("p", { text: error.message }));
    const params = (error.problem && error.problem.invalid_params) || [];
    if (params.length) {
      box.append(el("ul", {}, params.map((param) => el("li", { text: `${param.name}: ${param.reason}` }))));
    }
    return box;
  }

  // Runs a click's work: its button is disabled meanwhile; errors are shown where `place` says.
  function action(work, place) {
    return async (event) => {
      const button = event && event.currentTarget;
      if (button) button.disabled = true;
      try {
        await work(event);
      } catch (error) {
        if (error instanceof LinkExpired) return;
        if (place) place.replaceChildren(errorBox(error));
        else announce(error.message);
      } finally {
        if (button && button.isConnected) button.disabled = false;
      }
    };
  }

  function attemptOutcome(attempt) {
    if (!attempt) return "no attempt yet";
    const result = attempt.status_code ? `HTTP ${attempt.status_code}` : attempt.error || "failed";
    return `${result} in ${attempt.latency_ms} ms`;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Polls a delivery until `done(delivery)`, or gives up after POLL_LIMIT_MS with the last one read.
  async function waitForDelivery(subscriptionId, deliveryId, done) {
    const deadline = Date.now() + POLL_LIMIT_MS;
    for (;;) {
      const delivery = await api("GET", deliveryPath(subscriptionId, deliveryId));
      if (done(delivery) || Date.now() > deadline) return delivery;
      await sleep(POLL_INTERVAL_MS);
    }
  }

  // ---- routes: the view shown is in the address's fragment (#/webhooks/<id>/deliveries/<id>), so that
  // a reload shows it again and Back returns to the view before, within the portal. The token is never
  // there: it is taken out of the address before any route is set.

  const ROUTES = {
    list: "#/webhooks",
    new: "#/webhooks/new",
    subscription: (id) => `#/webhooks/${encodeURIComponent(id)}`,
    edit: (id) => `#/webhooks/${encodeURIComponent(id)}/edit`,
    delivery: (id, deliveryId) => `#/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}`,
  };

  // The address of the view being shown: a new history entry, but for the first view, which takes the
  // place of the bare /portal, and for a view shown again (a reload, Back), which is already there.
  function setRoute(hash) {
    if (!location.hash) history.replaceState(null, "", hash);
    else if (location.hash !== hash) history.pushState(null, "", hash);
  }

  async function showRoute() {
    const [root, id, part, deliveryId] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    if (root !== "webhooks" || !id) return showSubscriptions(null);
    // A read-only link has no forms: a link to one shows what it would change.
    if (id === "new" && !part) return state.readOnly ? showSubscriptions(null) : showForm(null);
    if (part === "edit" && !state.readOnly) return showForm(await api("GET", webhookPath(id)));
    if (part === "deliveries" && deliveryId) return showDelivery({ id }, deliveryId);
    return showSubscription(id);
  }

  const webhookPath = (id) => `v3/webhooks/${encodeURIComponent(id)}`;
  const deliveryPath = (subscriptionId, deliveryId) =>
    `${webhookPath(subscriptionId)}/deliveries/${encodeURIComponent(deliveryId)}`;

  // ---- views ----

  // The link is over (expired, refused, signed out): the page forgets it and shows no data.
  function showEnded(title, reason) {
    forgetToken();
    document.getElementById("session").textContent = "";
    document.getElementById("sign-out").hidden = true;
    announce("");
    showView(
      title,
      el(
        "div",
        { className: "panel expired" },
        el("p", { text: reason }),
        el("p", { text: "Go back to the application that sent you here to open a new one." }),
      ),
    );
  }

  function showExpired() {
    showEnded("This link has expired", "This webhook portal link has expired or is not valid.");
  }

  async function showSubscriptions(after) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (after) query.set("after", after);
    const page = await api("GET", `v3/webhooks?${query}`);
    const rows = page.data.map((subscription) => {
      const health = el("td", { text: "…" });
      loadHealth(subscription, health);
      return el(
        "tr",
        {},
        el(
          "td",
          {},
          el(
            "button",
            { type: "button", className: "link", onclick: action(() => showSubscription(subscription.id)) },
            code(subscription.endpoint),
          ),
        ),
        el("td", { text: subscription.description || "" }),
        el("td", {}, stateBadge(subscription)),
        health,
        el("td", {}, time(subscription.failing_since)),
      );
    });
    const table = dataTable(
      page.data.length ? "Your webhook endpoints" : "No webhook endpoints yet.",
      ["Endpoint", "Description", "State", "Last attempt", "Failing since"],
      rows,
    );
    setRoute(ROUTES.list);
    showView(
      "Webhook endpoints",
      el(
        "div",
        { className: "actions" },
        !state.readOnly &&
          el("button", { type: "button", className: "primary", text: "Add endpoint", onclick: () => showForm(null) }),
        after && el("button", { type: "button", text: "First page", onclick: action(() => showSubscriptions(null)) }),
        page.meta.next_cursor &&
          el("button", {
            type: "button",
            text: "Next page",
            onclick: action(() => showSubscriptions(page.meta.next_cursor)),
          }),
      ),
      table,
    );
  }

  function stateBadge(subscription) {
    if (subscription.enabled) return badge("Enabled", "enabled");
    const reason = subscription.disabled_reason ? `Disabled: ${subscription.disabled_reason}` : "Disabled";
    return badge(reason, "disabled");
  }

  // The last attempt of the newest delivery: two small reads per listed endpoint, made after the list shows.
  async function loadHealth(subscription, cell) {
    try {
      const newest = await api("GET", `${webhookPath(subscription.id)}/deliveries?limit=1`);
      if (!newest.data.length) {
        cell.textContent = "No deliveries yet";
        return;
      }
      const delivery = await api("GET", deliveryPath(subscription.id, newest.data[0].id));
      const attempt = delivery.attempts[delivery.attempts.length - 1];
      cell.replaceChildren(
        badge(delivery.status, delivery.status),
        " ",
        attempt ? attemptOutcome(attempt) : "not attempted yet",
        attempt ? el("br") : null,
        attempt ? time(attempt.at) : null,
      );
    } catch (error) {
      if (!(error instanceof LinkExpired)) cell.textContent = "unavailable";
    }
  }

  async function showSubscription(id, secret) {
    const subscription = await api("GET", webhookPath(id));
    const sections = [
      el(
        "div",
        { className: "actions" },
        el("button", { type: "button", text: "← All endpoints", onclick: action(() => showSubscriptions(null)) }),
        !state.readOnly && [
          el("button", { type: "button", text: "Edit", onclick: () => showForm(subscription) }),
          el("button", {
            type: "button",
            text: "Rotate secret",
            onclick: action(async () => {
              const rotated = await api("POST", `${webhookPath(id)}/secret/rotate`);
              await showSubscription(id, rotated.secret_key);
              announce("Secret rotated: the previous one keeps signing for 24 hours.");
            }),
          }),
          el("button", {
            type: "button",
            className: "danger",
            text: "Delete",
            onclick: () => confirmDelete(subscription),
          }),
        ],
      ),
      secret && secretPanel(secret),
      el(
        "section",
        { "aria-labelledby": "settings-title" },
        el("h2", { id: "settings-title", text: "Settings" }),
        describeList([
          ["Endpoint", code(subscription.endpoint)],
          ["Description", subscription.description || "—"],
          ["State", stateBadge(subscription)],
          ["Failing since", time(subscription.failing_since)],
          ["Events", subscription.subscribed_events.join(", ")],
          ["Scopes", subscription.scopes.join(", ")],
          ["Workspaces", subscription.workspaces.join(", ")],
          ["Sandbox", subscription.sandbox ? "yes" : "no"],
          ["Payload format", subscription.delivery_format],
          ["Content type", subscription.content_type],
          ["Auto retry", subscription.auto_retry ? "yes" : "no"],
          ["Rate limit", subscription.rate_limit ? `${subscription.rate_limit} requests per second` : "none"],
          ["Custom headers", headerList(subscription.headers)],
          ["Signature scheme", subscription.signature_scheme],
          ["Public key", subscription.public_key ? code(subscription.public_key) : "—"],
          ["Created", time(subscription.created_at)],
          ["Updated", time(subscription.updated_at)],
        ]),
      ),
      !state.readOnly && testSection(subscription),
      !state.readOnly && recoverSection(subscription),
      await deliveryLog(subscription, null, null),
    ];
    setRoute(ROUTES.subscription(id));
    showView(subscription.description || subscription.endpoint, sections);
  }

  // Sensitive values come masked from the API, as every read shows them.
  function headerList(headers) {
    const entries = Object.entries(headers || {});
    if (!entries.length) return "none";
    return el(
      "ul",
      { className: "plain" },
      entries.map(([name, value]) => el("li", {}, code(`${name}: ${value}`))),
    );
  }

  function secretPanel(secret) {
    const input = el("input", { type: "text", readonly: true, value: secret, id: uniqueId("secret") });
    const copied = el("span", { role: "status", className: "hint" });
    return el(
      "section",
      { className: "secret", "aria-labelledby": "secret-title" },
      el("h2", { id: "secret-title", text: "Signing secret" }),
      el("p", { text: "Copy it now: it is shown only this once. Your endpoint verifies each request with it." }),
      field("Signing secret", input),
      el(
        "div",
        { className: "actions" },
        el("button", {
          type: "button",
          text: "Copy secret",
          onclick: action(async () => {
            try {
              await navigator.clipboard.writeText(secret);
            } catch {
              input.select(); // the clipboard is not offered here (e.g. a frame without permission)
              document.execCommand("copy");
            }
            copied.textContent = "Copied.";
          }),
        }),
        copied,
      ),
    );
  }

  function eventChoices(subscription) {
    const names = subscription.subscribed_events.includes("*")
      ? state.catalog.map((type) => type.name)
      : subscription.subscribed_events;
    return names.map((name) => [name, name]);
  }

  // A section of one labelled control and one button whose outcome is announced below it.
  function actionSection(id, title, label, control, hint, buttonText, run) {
    const outcome = el("div", { role: "status" });
    return el(
      "section",
      { "aria-labelledby": id },
      el("h2", { id, text: title }),
      field(label, control, hint),
      el(
        "div",
        { className: "actions" },
        el("button", { type: "button", text: buttonText, onclick: action(() => run(outcome), outcome) }),
      ),
      outcome,
    );
  }

  function testSection(subscription) {
    const picker = select(eventChoices(subscription), subscription.subscribed_events[0]);
    return actionSection(
      "test-title",
      "Send a test event",
      "Event to send",
      picker,
      "Its sample payload is sent like any delivery, marked X-Hookrelay-Test.",
      "Send test event",
      async (outcome) => {
        outcome.textContent = "Sending…";
        const sent = await api("POST", `${webhookPath(subscription.id)}/test`, { event_name: picker.value });
        const delivery = await waitForDelivery(subscription.id, sent.id, (found) => found.attempts.length > 0);
        const attempt = delivery.attempts[delivery.attempts.length - 1];
        outcome.replaceChildren(
          `Test event ${delivery.status}: ${attemptOutcome(attempt)}. `,
          el("button", {
            type: "button",
            className: "link",
            text: "View delivery",
            onclick: action(() => showDelivery(subscription, delivery.id)),
          }),
        );
      },
    );
  }

  function recoverSection(subscription) {
    const since = el("input", { type: "datetime-local", required: true });
    return actionSection(
      "recover-title",
      "Recover failed deliveries",
      `Failed since (your time zone: ${localZone(new Date())})`,
      since,
      "Every delivery that failed for good since then is sent again, once.",
      "Recover",
      async (outcome) => {
        const moment = new Date(since.value);
        if (!since.value || Number.isNaN(moment.getTime())) {
          outcome.textContent = "Choose a date and time first.";
          since.focus();
          return;
        }
        let recovered = 0;
        let after = null;
        do {
          const body = after ? { since: moment.toISOString(), after } : { since: moment.toISOString() };
          const result = await api("POST", `${webhookPath(subscription.id)}/recover`, body);
          recovered += result.recovered;
          after = result.next_cursor;
        } while (after);
        outcome.textContent = `${recovered} failed ${recovered === 1 ? "delivery" : "deliveries"} sent again.`;
      },
    );
  }

  async function deliveryLog(subscription, status, after) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (status) query.set("status", status);
    if (after) query.set("after", after);
    const page = await api("GET", `${webhookPath(subscription.id)}/deliveries?${query}`);
    const filter = select([["", "All"], ...STATUSES.map((name) => [name, name])], status || "");
    const section = el("section", { "aria-labelledby": "log-title" });
    const reload = (nextStatus, nextAfter) =>
      action(async () => {
        const fresh = await deliveryLog(subscription, nextStatus, nextAfter);
        section.replaceWith(fresh);
        fresh.querySelector("h2").focus();
      });
    filter.addEventListener("change", () => reload(filter.value || null, null)());
    const rows = page.data.map((delivery) =>
      el(
        "tr",
        {},
        el("td", {}, time(delivery.created_at)),
        el(
          "td",
          {},
          el("button", {
            type: "button",
            className: "link",
            text: delivery.event_name,
            "aria-label": `Delivery of ${delivery.event_name} at ${delivery.created_at}`,
            onclick: action(() => showDelivery(subscription, delivery.id)),
          }),
          delivery.test ? " (test)" : "",
        ),
        el("td", {}, badge(delivery.status, delivery.status)),
        el("td", { text: String(delivery.attempt_count) }),
        el("td", {}, time(delivery.next_attempt_at)),
      ),
    );
    section.append(
      el("h2", { id: "log-title", tabindex: "-1", text: "Deliveries" }),
      field("Status", filter),
      dataTable(
        page.data.length ? "Newest first" : "No deliveries.",
        ["Created", "Event", "Status", "Attempts", "Next attempt"],
        rows,
      ),
      el(
        "div",
        { className: "actions" },
        el("button", { type: "button", text: "Refresh", onclick: reload(status, after) }),
        after && el("button", { type: "button", text: "First page", onclick: reload(status, null) }),
        page.meta.next_cursor &&
          el("button", { type: "button", text: "Next page", onclick: reload(status, page.meta.next_cursor) }),
      ),
    );
    return section;
  }

  async function showDelivery(subscription, deliveryId) {
    const delivery = await api("GET", deliveryPath(subscription.id, deliveryId));
    const outcome = el("div", { role: "status" });
    const attempts = el(
      "table",
      {},
      el("caption", { text: `${delivery.attempt_count} attempt(s); the first and the latest are kept.` }),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ["Time", "URL", "Status code", "Latency (ms)", "Error", "Response excerpt"].map((name) =>
            el("th", { scope: "col", text: name }),
          ),
        ),
      ),
      el(
        "tbody",
        {},
        delivery.attempts.map((attempt) =>
          el(
            "tr",
            { className: "attempt" },
            el("td", {}, time(attempt.at)),
            el("td", {}, attempt.url ? code(attempt.url) : "—"),
            el("td", { text: attempt.status_code ?? "—" }),
            el("td", { text: String(attempt.latency_ms) }),
            el("td", { text: attempt.error || "—" }),
            el("td", {}, attempt.response_excerpt ? el("pre", { text: attempt.response_excerpt }) : "—"),
          ),
        ),
      ),
    );
    const headers = el(
      "table",
      {},
      el("caption", { text: "Headers (signatures are added at each send)" }),
      el("tbody", {}, Object.entries(delivery.request.headers).map(([name, value]) =>
        el("tr", {}, el("th", { scope: "row", text: name }), el("td", {}, code(value))),
      )),
    );
    setRoute(ROUTES.delivery(subscription.id, deliveryId));
    showView(
      `Delivery of ${delivery.event_name}`,
      el(
        "div",
        { className: "actions" },
        el("button", {
          type: "button",
          text: "← Endpoint",
          onclick: action(() => showSubscription(subscription.id)),
        }),
        !state.readOnly &&
          el("button", {
            type: "button",
            text: "Retry now",
            onclick: action(async () => {
              const before = delivery.attempt_count;
              outcome.textContent = "Retrying…";
              await api("POST", `${deliveryPath(subscription.id, deliveryId)}/retry`);
              const after = await waitForDelivery(subscription.id, deliveryId, (found) => found.attempt_count > before);
              await showDelivery(subscription, deliveryId);
              announce(`Retried: ${after.status}, ${attemptOutcome(after.attempts[after.attempts.length - 1])}.`);
            }, outcome),
          }),
      ),
      outcome,
      el(
        "section",
        { "aria-labelledby": "delivery-title" },
        el("h2", { id: "delivery-title", text: "Summary" }),
        describeList([
          ["Status", badge(delivery.status, delivery.status)],
          ["Delivery id", code(delivery.id)],
          ["Event id", code(delivery.event_id)],
          ["Event", delivery.event_name + (delivery.test ? " (test)" : "")],
          ["Attempts", String(delivery.attempt_count)],
          ["Next attempt", time(delivery.next_attempt_at)],
          ["Created", time(delivery.created_at)],
        ]),
      ),
      el(
        "section",
        { "aria-labelledby": "request-title" },
        el("h2", { id: "request-title", text: "Request" }),
        el("p", { className: "hint", text: "As the next attempt sends it; each attempt's own URL is under Attempts." }),
        describeList([["URL", [`${delivery.request.method} `, code(delivery.request.url)]]]),
        scrolling(headers),
        el("h3", { text: "Body" }),
        el("pre", { text: readableBody(delivery.request.body) }),
      ),
      el(
        "section",
        { "aria-labelledby": "attempts-title" },
        el("h2", { id: "attempts-title", text: "Attempts" }),
        scrolling(attempts),
      ),
    );
  }

  function listText(values) {
    return values.join(", ");
  }

  function listValue(text) {
    return text
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean);
  }

  // Custom headers as rows to edit. A write-only value comes masked, and written back unchanged it keeps
  // the one stored; the API asks for it again where the stored one must not go (another host).
  function headerEditor(headers, sensitive) {
    const marked = new Set(sensitive.map((name) => name.toLowerCase()));
    const rows = el("div");
    function addRow(name, value, writeOnly) {
      const nameInput = el("input", { type: "text", value: name, "aria-label": "Header name", autocomplete: "off" });
      const valueInput = el("input", { type: "text", value, "aria-label": "Header value", autocomplete: "off" });
      const hidden = checkbox("Write-only", writeOnly);
      const row = el(
        "div",
        { className: "header-row" },
        nameInput,
        valueInput,
        hidden.node,
        el("button", { type: "button", text: "Remove", onclick: () => row.remove() }),
      );
      row.read = () => ({ name: nameInput.value.trim(), value: valueInput.value, writeOnly: hidden.input.checked });
      rows.append(row);
      return nameInput;
    }
    for (const [name, value] of Object.entries(headers)) addRow(name, value, marked.has(name.toLowerCase()));
    const node = el(
      "fieldset",
      {},
      el("legend", { text: "Custom headers" }),
      el("p", {
        className: "hint",
        text:
          "Sent with every request. Credentials (Authorization, Proxy-Authorization, Cookie, names with token, " +
          "secret, key, signature or password) and write-only values show masked; moving the endpoint to another " +
          "host needs them typed again.",
      }),
      rows,
      el("button", { type: "button", text: "Add a header", onclick: () => addRow("", "", false).focus() }),
    );
    function read() {
      const entries = [...rows.children].map((row) => row.read()).filter((entry) => entry.name || entry.value);
      return {
        headers: Object.fromEntries(entries.map((entry) => [entry.name, entry.value])),
        sensitive_headers: entries.filter((entry) => entry.writeOnly).map((entry) => entry.name),
      };
    }
    return { node, read };
  }

  function showForm(existing) {
    const endpoint = el("input", { type: "url", required: true, value: existing ? existing.endpoint : "" });
    const description = el("input", { type: "text", maxlength: "255", value: existing?.description || "" });
    const chosen = new Set(existing ? existing.subscribed_events : []);
    const allEvents = checkbox("All events (*)", chosen.has("*"), "Also every event added to the catalog later.");
    const eventBoxes = state.catalog.map((type) => {
      const box = checkbox(type.name, chosen.has(type.name), type.description);
      box.input.value = type.name;
      return box;
    });
    const scopes = el("input", { type: "text", value: listText(existing ? existing.scopes : ["*"]) });
    const workspaces = el("input", { type: "text", value: listText(existing ? existing.workspaces : ["*"]) });
    const sandbox = checkbox("Sandbox events", existing?.sandbox, "Receive sandbox events instead of production ones.");
    const payloadFormat = select(
      PAYLOAD_FORMATS.map((name) => [name, name]),
      existing ? existing.payload_format : "yousign",
    );
    const contentType = select(
      CONTENT_TYPES.map((name) => [name, name]),
      existing ? existing.content_type : "application/json",
    );
    const autoRetry = checkbox("Retry failed deliveries", existing ? existing.auto_retry : true);
    const enabled = checkbox("Enabled", existing ? existing.enabled : true);
    const customHeaders = headerEditor(existing?.headers || {}, existing?.sensitive_headers || []);
    const errors = el("div");

    function values() {
      const picked = allEvents.input.checked
        ? ["*"]
        : eventBoxes.filter((box) => box.input.checked).map((box) => box.input.value);
      return {
        endpoint: endpoint.value.trim(),
        description: description.value,
        subscribed_events: picked,
        scopes: listValue(scopes.value),
        workspaces: listValue(workspaces.value),
        sandbox: sandbox.input.checked,
        payload_format: payloadFormat.value,
        content_type: contentType.value,
        auto_retry: autoRetry.input.checked,
        enabled: enabled.input.checked,
        ...customHeaders.read(),
      };
    }

    // An edit sends only what changed: the endpoint is shown masked, and must not be written back so.
    function changes(wanted) {
      return Object.fromEntries(
        Object.entries(wanted).filter(([name, value]) => JSON.stringify(value) !== JSON.stringify(existing[name])),
      );
    }

    const form = el(
      "form",
      { className: "panel", novalidate: true },
      field("Endpoint URL", endpoint, "https:// URL that receives the signed POST requests."),
      field("Description", description),
      el(
        "fieldset",
        {},
        el("legend", { text: "Events" }),
        allEvents.node,
        el("div", { className: "events" }, eventBoxes.map((box) => box.node)),
      ),
      field("Scopes", scopes, "Comma-separated; * for every scope."),
      field("Workspaces", workspaces, "Comma-separated; * for every workspace."),
      sandbox.node,
      field("Payload format", payloadFormat),
      field("Content type", contentType, "Form encoding is for the subnoto format only."),
      autoRetry.node,
      enabled.node,
      customHeaders.node,
      errors,
      el(
        "div",
        { className: "actions" },
        el("button", { type: "submit", className: "primary", text: existing ? "Save changes" : "Create endpoint" }),
        el("button", {
          type: "button",
          text: "Cancel",
          onclick: action(() => (existing ? showSubscription(existing.id) : showSubscriptions(null))),
        }),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      action(async () => {
        if (existing) {
          const patch = changes(values());
          if (Object.keys(patch).length) await api("PATCH", webhookPath(existing.id), patch);
          await showSubscription(existing.id);
          announce("Saved.");
        } else {
          const created = await api("POST", "v3/webhooks", values());
          await showSubscription(created.id, created.secret_key);
          announce("Endpoint created.");
        }
      }, errors)();
    });
    setRoute(existing ? ROUTES.edit(existing.id) : ROUTES.new);
    showView(existing ? "Edit endpoint" : "Add an endpoint", form);
  }

  function confirmDelete(subscription) {
    const dialog = document.getElementById("confirm");
    const accept = document.getElementById("confirm-accept");
    const cancel = document.getElementById("confirm-cancel");
    document.getElementById("confirm-title").textContent = "Delete this endpoint?";
    document.getElementById("confirm-text").textContent =
      `${subscription.endpoint} stops receiving events; deliveries still pending for it are dropped.`;
    accept.textContent = "Delete endpoint";
    const close = () => {
      accept.onclick = null;
      cancel.onclick = null;
      dialog.close();
    };
    cancel.onclick = close;
    accept.onclick = action(async () => {
      await api("DELETE", webhookPath(subscription.id));
      close();
      await showSubscriptions(null);
      announce("Endpoint deleted.");
    });
    dialog.showModal();
    cancel.focus();
  }

  // The link ends here for everyone who has it, not just in this tab.
  async function signOut() {
    await api("DELETE", "v3/portal-sessions/current");
    showEnded("Signed out", "You have signed out: this webhook portal link no longer works.");
  }

  async function start() {
    state.token = takeToken();
    if (!state.token) {
      showExpired();
      return;
    }
    try {
      const session = await api("GET", "v3/portal-sessions/current");
      state.readOnly = session.read_only;
      document.getElementById("session").textContent =
        `${session.read_only ? "Read-only link" : "Link"} valid until ${new Date(session.expires_at).toLocaleString()}`;
      const signOutButton = document.getElementById("sign-out");
      signOutButton.onclick = action(signOut);
      signOutButton.hidden = false;
      state.catalog = (await api("GET", "v3/webhook-event-types")).data;
      window.addEventListener("popstate", () => action(showRoute)());
      await showRoute();
    } catch (error) {
      if (!(error instanceof LinkExpired)) showView("Something went wrong", errorBox(error));
    }
  }

  start();
})();
