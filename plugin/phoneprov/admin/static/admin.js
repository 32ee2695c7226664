/* phoneprov admin pages: the data comes from the JSON API (/api/v1) of the same service.
   Plain JavaScript, no framework, no build step. Every value goes into the page as text
   (textContent), never as HTML. A page says which it is with <section data-page="...">. */
"use strict";

(function () {
  const API = "/api/v1";
  const DASH = "\u2014";

  // --- talking to the API -------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* GET (or POST with `json`) an API path; the parsed JSON, or an ApiError with the API's
     message. Not logged in (any more): back to the login page. */
  async function api(path, options) {
    const opts = options || {};
    const method = opts.method || (opts.json === undefined ? "GET" : "POST");
    const headers = { Accept: "application/json" };
    const init = { method: method, credentials: "same-origin", headers: headers };
    if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (err) {
      throw new ApiError(0, "the admin service did not answer (" + err.message + ")");
    }
    if (response.status === 401) {
      window.location.assign("/login");
      throw new ApiError(401, "not logged in");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error ? data.error : response.status + " " + response.statusText;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  // --- building the page --------------------------------------------------------------

  /* el("td", {class: "x", "data-col": "mac"}, "text", otherNode): an element, children as
     text or nodes; attributes with value null/undefined are left out. */
  function el(tag, attrs) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (let i = 2; i < arguments.length; i++) {
      const child = arguments[i];
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  /* Unix seconds -> "2026-12-02 04:05:06" in the browser's time zone; a dash for none. */
  function formatTime(seconds) {
    if (seconds === null || seconds === undefined) return DASH;
    const d = new Date(seconds * 1000);
    return (
      d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds())
    );
  }

  function text(value) {
    return value === null || value === undefined || value === "" ? DASH : String(value);
  }

  function showError(target, err) {
    target.textContent = err.message;
    target.classList.add("error");
  }

  function showStatus(target, message) {
    target.textContent = message;
    target.classList.remove("error");
  }

  /* Run `job` now and again `ms` after each run ends; not while the page is hidden (a tab in
     the background asks nothing, so the admin service can go idle), at once when it shows. */
  function every(ms, job) {
    let timer = null;
    let running = false;
    async function run() {
      window.clearTimeout(timer);
      timer = null;
      if (running || document.hidden) return;
      running = true;
      try {
        await job();
      } finally {
        running = false;
      }
      if (!document.hidden) timer = window.setTimeout(run, ms);
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) run();
    });
    run();
  }

  function stateBadge(state) {
    return el("span", { class: "state state-" + state.replace(/ /g, "-") }, state);
  }

  function macPath(mac) {
    return encodeURIComponent(mac);
  }

  // --- the phones page ----------------------------------------------------------------

  /* Each sortable column: its value in a row (for sorting and the filter) and its cell. */
  const PHONE_COLUMNS = {
    mac: { value: (r) => r.mac },
    model: { value: (r) => r.model },
    profile: { value: (r) => r.profile },
    name: { value: (r) => r.name },
    address: { value: (r) => (r.lease ? r.lease.address : null), order: ipOrder },
    expires: { value: (r) => (r.lease ? r.lease.expires : null), show: formatTime },
    fetch_time: { value: (r) => (r.last_fetch ? r.last_fetch.time : null), show: formatTime },
    fetch_path: { value: (r) => (r.last_fetch ? r.last_fetch.path : null) },
    fetch_status: { value: (r) => (r.last_fetch ? r.last_fetch.status : null) },
    state: { value: (r) => r.state },
    source: { value: (r) => r.source },
  };

  function ipOrder(address) {
    if (!address) return null;
    return address.split(".").reduce((n, part) => n * 256 + Number(part), 0);
  }

  function compareValues(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1; // empty cells last, either direction
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  function phoneCell(row, key) {
    const column = PHONE_COLUMNS[key];
    const value = column.value(row);
    if (key === "mac") {
      // a discovered phone has no page of its own yet: its link leads to the enrol form
      const discovered = row.source === "discovered";
      const href = discovered ? "/discovered" : "/phones/" + macPath(row.mac);
      const source = row.source === "inventory" ? null : el("span", { class: "detail" }, row.source);
      return el("td", { "data-col": key }, el("a", { href: href }, row.mac), source);
    }
    if (key === "state") {
      const detail = row.state_detail ? el("span", { class: "detail" }, row.state_detail) : null;
      return el("td", { "data-col": key }, stateBadge(row.state), detail);
    }
    if (key === "fetch_path" && value) {
      const name = value.split("/").pop() || value; // the file; the whole path on hover
      return el("td", { "data-col": key, title: value }, name);
    }
    return el("td", { "data-col": key }, column.show ? column.show(value) : text(value));
  }

  /* The filter: every word must appear in the row's text; MACs match in any notation. */
  function matches(row, words) {
    if (!words.length) return true;
    const values = Object.values(PHONE_COLUMNS).map((c) => c.value(row));
    values.push(row.mac.replace(/:/g, ""), row.state_detail);
    const haystack = values.filter((v) => v !== null && v !== undefined).join(" ").toLowerCase();
    return words.every((w) => haystack.includes(w) || haystack.includes(w.replace(/[-:.]/g, "")));
  }

  /* ": 3 provisioned, 1 never fetched" over all phones, most frequent first. */
  function stateCounts(rows) {
    const counts = new Map();
    for (const r of rows) counts.set(r.state, (counts.get(r.state) || 0) + 1);
    const parts = Array.from(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    return parts.length ? ": " + parts.map(([state, n]) => n + " " + state).join(", ") : "";
  }

  function phonesPage(section) {
    const table = section.querySelector("table.phones");
    const body = table.querySelector("tbody");
    const keys = Array.from(table.querySelectorAll("thead th")).map((th) => th.dataset.col);
    const filter = section.querySelector("#filter");
    const status = section.querySelector("#phones-status");
    const count = section.querySelector("#phones-count");
    const refreshMs = Number(section.dataset.refreshMs || 3000);
    let rows = [];
    let seen = ""; // the last answer: the table is rebuilt only when it changed (a selection stays)
    let sort = { key: "mac", dir: 1 };

    function render() {
      const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      const order = PHONE_COLUMNS[sort.key].order || ((v) => v);
      const value = PHONE_COLUMNS[sort.key].value;
      const shown = rows
        .filter((r) => matches(r, words))
        .sort((a, b) => {
          const [x, y] = [order(value(a)), order(value(b))];
          const empty = x === null || x === undefined || y === null || y === undefined;
          return (empty ? compareValues(x, y) : sort.dir * compareValues(x, y)) || compareValues(a.mac, b.mac);
        });
      const trs = shown.map((r) =>
        el("tr", { "data-mac": r.mac, "data-state": r.state }, ...keys.map((k) => phoneCell(r, k)))
      );
      if (!trs.length) {
        const message = rows.length ? "No phone matches the filter." : "No phones yet.";
        trs.push(el("tr", {}, el("td", { colspan: keys.length, class: "empty" }, message)));
      }
      body.replaceChildren(...trs);
      count.textContent = shown.length + " of " + rows.length + " phones" + stateCounts(rows);
      for (const th of table.querySelectorAll("thead th")) {
        const on = th.dataset.col === sort.key;
        th.setAttribute("aria-sort", on ? (sort.dir > 0 ? "ascending" : "descending") : "none");
      }
    }

    async function refresh() {
      try {
        const data = await api("/phones");
        const now = JSON.stringify(data.phones);
        if (now !== seen) {
          [rows, seen] = [data.phones, now];
          render();
        }
        showStatus(status, "Updated " + formatTime(Date.now() / 1000).slice(11));
      } catch (err) {
        showError(status, err);
      }
    }

    table.querySelector("thead").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-sort]");
      if (!button) return;
      const key = button.dataset.sort;
      sort = { key: key, dir: sort.key === key ? -sort.dir : 1 };
      render();
    });
    filter.addEventListener("input", render);
    every(refreshMs, refresh);
  }

  // --- a phone's page -----------------------------------------------------------------

  function definitionList(target, pairs) {
    const items = [];
    for (const [term, value] of pairs) items.push(el("dt", {}, term), el("dd", {}, value));
    target.replaceChildren(...items);
  }

  function fetchTable(target, fetches) {
    const body = target.querySelector("tbody");
    const rows = fetches.map((f) =>
      el(
        "tr",
        {},
        el("td", {}, formatTime(f.time)),
        el("td", {}, text(f.ip)),
        el("td", { class: "path" }, text(f.path)),
        el("td", {}, text(f.status)),
        el("td", { class: "number" }, text(f.bytes)),
        el("td", {}, text(f.reason))
      )
    );
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No fetches yet.")));
    body.replaceChildren(...rows);
  }

  function phonePage(section) {
    const mac = section.dataset.mac;
    const refreshMs = Number(section.dataset.refreshMs || 5000);
    const status = section.querySelector("#phone-status");
    const revealButton = section.querySelector("#reveal");
    const resyncButton = section.querySelector("#resync");
    const resyncResult = section.querySelector("#resync-result");
    let revealed = false;

    function summary(phone) {
      const lease = phone.lease;
      const fetch = phone.last_fetch;
      definitionList(section.querySelector("#summary"), [
        ["State", el("span", {}, stateBadge(phone.state), phone.state_detail ? " " + phone.state_detail : "")],
        ["Source", text(phone.source)],
        ["Model", text(phone.model)],
        ["Profile", text(phone.profile)],
        ["Line 1", text(phone.name)],
        ["Lease", lease ? lease.address + " until " + formatTime(lease.expires) : "no lease"],
        [
          "Last fetch",
          fetch ? formatTime(fetch.time) + " " + fetch.path + " " + fetch.status : "never",
        ],
      ]);
    }

    function optionValue(value) {
      if (value === null || value === undefined || value === "") return DASH;
      if (Array.isArray(value)) return value.join(", ");
      if (typeof value === "boolean") return value ? "yes" : "no";
      return typeof value === "object" ? JSON.stringify(value) : String(value);
    }

    function options(phone) {
      const opts = phone.options || {};
      const rows = Object.entries(opts).map(([key, value]) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, /^\d+$/.test(key) ? "option " + key : key),
          el("td", {}, el("code", {}, optionValue(value)))
        )
      );
      section.querySelector("#options tbody").replaceChildren(...rows);
      section.querySelector("#entry-url").textContent = text(phone.entry_url);
    }

    function files(phone) {
      const blocks = (phone.files || []).map((f) =>
        el(
          "details",
          { open: "" },
          el("summary", {}, f.name && f.name !== f.path ? f.name + " \u2014 " + f.path : f.path),
          el("pre", { class: "file" }, f.body)
        )
      );
      if (!blocks.length) blocks.push(el("p", { class: "empty" }, "No files."));
      section.querySelector("#files").replaceChildren(...blocks);
    }

    let seen = ""; // the last answer: the page is rebuilt only when it changed

    async function load() {
      try {
        const phone = await api("/phones/" + macPath(mac) + (revealed ? "?reveal=1" : ""));
        const now = JSON.stringify(phone);
        if (now !== seen) {
          seen = now;
          summary(phone);
          options(phone);
          files(phone);
          fetchTable(section.querySelector("#fetches"), phone.fetches || []);
        }
        showStatus(status, "Updated " + formatTime(Date.now() / 1000).slice(11));
      } catch (err) {
        showError(status, err);
      }
    }

    revealButton.addEventListener("click", async () => {
      revealed = !revealed;
      revealButton.textContent = revealed ? "Mask passwords" : "Reveal passwords";
      revealButton.setAttribute("aria-pressed", String(revealed));
      await load();
    });

    resyncButton.addEventListener("click", async () => {
      resyncButton.disabled = true;
      resyncResult.removeAttribute("data-result");
      showStatus(resyncResult, "Sending check-sync\u2026");
      try {
        const answer = await api("/phones/" + macPath(mac) + "/resync", { json: {} });
        resyncResult.dataset.result = answer.result;
        resyncResult.replaceChildren(
          stateBadge(answer.result),
          answer.detail ? " " + answer.detail : ""
        );
        resyncResult.classList.remove("error");
      } catch (err) {
        showError(resyncResult, err);
      } finally {
        resyncButton.disabled = false;
        load();
      }
    });

    // again every few seconds (a resync's fetches show up), but not while the passwords are
    // revealed: each revealing request is logged, once is enough
    every(refreshMs, () => (revealed ? null : load()));
  }

  // --- discovered phones --------------------------------------------------------------

  function selectOf(name, values, label, chosen) {
    const select = el("select", { name: name, required: "" });
    for (const v of values) select.append(el("option", v === chosen ? { value: v, selected: "" } : { value: v }, v));
    return el("label", {}, label + " ", select);
  }

  function enrolForm(mac, choices) {
    const form = el(
      "form",
      { class: "enrol", "data-mac": mac },
      el("input", { type: "hidden", name: "csrf_token", value: csrfToken() }),
      selectOf("model", choices.models, "Model", choices.default_model),
      selectOf("profile", choices.profiles, "Profile", choices.default_profile),
      el(
        "fieldset",
        {},
        el("legend", {}, "Line 1 (optional)"),
        el("label", {}, "user ", el("input", { name: "user", autocomplete: "off", size: 10 })),
        el(
          "label",
          {},
          "password ",
          el("input", { name: "password", type: "password", autocomplete: "new-password", size: 10 })
        ),
        el("label", {}, "display name ", el("input", { name: "display_name", size: 14 })),
        el("label", {}, "registrar ", el("input", { name: "registrar", size: 14, placeholder: "the profile's" }))
      ),
      el("button", { type: "submit" }, "Enrol"),
      el("output", { class: "result", role: "status" })
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const field = (name) => form.elements.namedItem(name).value.trim();
      const payload = { model: field("model"), profile: field("profile") };
      const line1 = {
        user: field("user"),
        password: form.elements.namedItem("password").value,
        display_name: field("display_name"),
        registrar: field("registrar"),
      };
      for (const key of Object.keys(line1)) if (!line1[key]) delete line1[key];
      if (Object.keys(line1).length) payload.line1 = line1; // none: the profile's line 1
      const result = form.querySelector("output");
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const answer = await api("/discovered/" + macPath(mac) + "/enrol", { json: payload });
        form.dataset.enrolled = "yes";
        result.classList.remove("error");
        result.replaceChildren(
          "Enrolled: ",
          el("a", { href: "/phones/" + macPath(mac) }, answer.phone.mac),
          " gets its options on its next DHCP exchange (" + answer.phone.state + ")."
        );
        for (const input of form.querySelectorAll("input, select")) input.disabled = true;
      } catch (err) {
        button.disabled = false;
        showError(result, err);
      }
    });
    return form;
  }

  function discoveredPage(section) {
    const body = section.querySelector("table.discovered tbody");
    const status = section.querySelector("#discovered-status");
    const refreshMs = Number(section.dataset.refreshMs || 5000);
    let choices = null;

    /* Rows are updated in place (by MAC) so a form being filled in is never replaced. */
    function update(found) {
      const seen = new Set();
      for (const d of found) {
        seen.add(d.mac);
        let tr = body.querySelector('tr[data-mac="' + d.mac + '"]');
        const cells = [
          d.mac,
          text(d.vendor_class),
          text(d.reason),
          text(d.address),
          formatTime(d.first_seen),
          formatTime(d.last_seen),
        ];
        if (!tr) {
          tr = el("tr", { "data-mac": d.mac });
          for (const _ of cells) tr.append(el("td"));
          tr.append(el("td", {}, enrolForm(d.mac, choices)));
          body.append(tr);
        }
        cells.forEach((value, i) => {
          tr.children[i].textContent = value;
        });
      }
      for (const tr of body.querySelectorAll("tr[data-mac]")) {
        const enrolled = tr.querySelector("form[data-enrolled]");
        if (!seen.has(tr.dataset.mac) && !enrolled) tr.remove();
      }
      const empty = body.querySelector("tr.none");
      if (body.querySelector("tr[data-mac]")) {
        if (empty) empty.remove();
      } else if (!empty) {
        body.append(el("tr", { class: "none" }, el("td", { colspan: 7, class: "empty" }, "No discovered phones.")));
      }
    }

    async function refresh() {
      try {
        if (choices === null) choices = await api("/models");
        const data = await api("/discovered");
        update(data.discovered);
        showStatus(status, "Updated " + formatTime(Date.now() / 1000).slice(11));
      } catch (err) {
        showError(status, err);
      }
    }

    every(refreshMs, refresh);
  }

  // --- doctor -------------------------------------------------------------------------

  function doctorPage(section) {
    const list = section.querySelector("#findings");
    const status = section.querySelector("#doctor-status");
    const button = section.querySelector("#doctor-run");

    async function run() {
      button.disabled = true;
      showStatus(status, "Running the checks\u2026");
      try {
        const data = await api("/doctor");
        const items = data.findings.map((f) =>
          el(
            "li",
            { class: "finding level-" + f.level },
            el("span", { class: "level" }, f.level.toUpperCase()),
            " ",
            el("strong", {}, f.title),
            f.detail ? el("p", {}, f.detail) : null,
            f.fix ? el("p", { class: "fix" }, "fix: ", el("code", {}, f.fix)) : null
          )
        );
        list.replaceChildren(...items);
        const failed = data.findings.filter((f) => f.level === "fail").length;
        const warned = data.findings.filter((f) => f.level === "warn").length;
        showStatus(status, data.findings.length + " checks: " + failed + " failed, " + warned + " warnings");
      } catch (err) {
        showError(status, err);
      } finally {
        button.disabled = false;
      }
    }

    // run on request only: the checks fetch every phone's files from the running server
    button.addEventListener("click", run);
  }

  const PAGES = { phones: phonesPage, phone: phonePage, discovered: discoveredPage, doctor: doctorPage };

  document.addEventListener("DOMContentLoaded", () => {
    for (const section of document.querySelectorAll("section[data-page]")) {
      const page = PAGES[section.dataset.page];
      if (page) page(section);
    }
  });
})();
