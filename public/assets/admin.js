// The operator dashboard's script (served as a file: the page's CSP forbids inline script). It holds no secret:
// the admin signs in with their wallet, the server sets an HttpOnly session cookie, and every view calls the
// operator API with it. Views are picked by the URL's hash: #/groups, #/groups/<id>, #/groups/<id>/edit, #/new, #/status.
"use strict";

(function main() {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const toast = document.getElementById("toast");
  if (!main || !nav || !who || !toast) return;
  const PAGE = 20;
  let me = null;

  // ---- small helpers -------------------------------------------------------------------------------------------

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("aria-") || key === "for" || key === "role" || key === "scope") node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  /** Replaces a node's children, skipping the absent ones (null, undefined). */
  function put(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  }
  const text = (value) => (value === null || value === undefined ? "—" : String(value));
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
  const VIA = { "join-page": "join page", webhook: "link service", operator: "added by an admin", reconciled: "found on XMTP", unknown: "unknown" };
  const SOURCE = { "join-page": "join page", webhook: "link service", reverify: "daily re-verification", operator: "operator" };
  const WHAT = {
    "join added": "joined",
    "join already-member": "joined (already a member)",
    "join denied": "denied",
    "join not-on-xmtp": "denied: no XMTP inbox",
    "join error": "join failed",
    "add added": "added",
    "add already-member": "added (already a member)",
    "add not-on-xmtp": "not added: no XMTP inbox",
    "add denied": "not added",
    "remove removed": "removed",
    "remove not-a-member": "removed (was not a member)",
    "remove not-on-xmtp": "not removed: no XMTP inbox",
    "edit changed": "group edited",
    "join-link changed": "join link changed",
    "message sent": "message sent",
  };
  const short = (address) => (address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "—");
  let fieldIds = 0;
  function field(label, input, hint) {
    input.id = input.id || `f${++fieldIds}`;
    const error = el("p", { className: "field-error", id: `${input.id}-error` });
    error.hidden = true;
    input.setAttribute("aria-describedby", `${input.id}-error${hint ? ` ${input.id}-hint` : ""}`);
    return el("div", { className: "field" }, [
      el("label", { for: input.id, textContent: label }),
      hint ? el("p", { className: "hint", id: `${input.id}-hint`, textContent: hint }) : null,
      input,
      error,
    ]);
  }
  function fieldError(input, message) {
    const error = document.getElementById(`${input.id}-error`);
    if (!error) return;
    error.textContent = message || "";
    error.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  let toastTimer = 0;
  function say(message) {
    toast.textContent = message;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (toast.textContent = ""), 6000);
  }

  /** An operator API call with the session cookie; throws {status, message, issues, retry} on failure. */
  async function api(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        credentials: "same-origin",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw { status: 0, message: "Could not reach the server; check your connection and try again.", retry: true };
    }
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const error = (data && data.error) || {};
    if (response.status === 401 && !path.startsWith("/api/admin/")) {
      me = null;
      render();
    }
    throw {
      status: response.status,
      message: error.message || `The server answered ${response.status}.`,
      issues: error.issues || [],
      retry: response.status === 503 || response.status === 429 || response.status === 0,
    };
  }

  /** A box that shows an error in words, with "Try again" for a temporary failure. */
  function problemBox(error, retry) {
    const box = el("div", { className: "problem", role: "alert" }, [el("p", { textContent: error.message })]);
    if (error.retry && retry) box.append(el("button", { type: "button", className: "secondary", textContent: "Try again", onclick: retry }));
    return box;
  }

  function section(title, children, id) {
    const headingId = `${id}-title`;
    return el("section", { className: "panel", id, "aria-labelledby": headingId }, [el("h2", { id: headingId, textContent: title }), ...children]);
  }

  function table(caption, columns, rows) {
    // Focusable and named: a table wider than a phone scrolls sideways, by keyboard too.
    return el("div", { className: "table-wrap", tabIndex: 0, role: "region", "aria-label": caption }, [
      el("table", {}, [
        el("caption", { className: "visually-hidden", textContent: caption }),
        el("thead", {}, [el("tr", {}, columns.map((c) => el("th", { scope: "col", textContent: c })))]),
        el("tbody", {}, rows),
      ]),
    ]);
  }

  function pager(offset, total, go) {
    const prev = el("button", { type: "button", className: "secondary", textContent: "Newer", disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) });
    const next = el("button", { type: "button", className: "secondary", textContent: "Older", disabled: offset + PAGE >= total, onclick: () => go(offset + PAGE) });
    return el("nav", { className: "pager", "aria-label": "Pages" }, [prev, el("span", { textContent: total === 0 ? "none" : `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` }), next]);
  }

  // ---- wallet sign-in ------------------------------------------------------------------------------------------

  let announced = null;
  window.addEventListener("eip6963:announceProvider", (event) => {
    if (!announced && event.detail && event.detail.provider) announced = event.detail.provider;
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  const wallet = () => window.ethereum || announced;
  const utf8Hex = (s) => `0x${Array.from(new TextEncoder().encode(s), (b) => b.toString(16).padStart(2, "0")).join("")}`;

  function signInView() {
    nav.hidden = true;
    const status = el("div", { id: "sign-in-status", className: "status", role: "status", "aria-live": "polite" });
    const button = el("button", { type: "button", className: "primary", id: "sign-in", textContent: "Connect wallet and sign in" });
    button.onclick = async () => {
      const provider = wallet();
      status.dataset.state = "working";
      if (!provider) {
        status.dataset.state = "error";
        status.textContent = "No wallet found in this browser. Install a wallet extension, or open this page in your wallet app's browser.";
        return;
      }
      button.disabled = true;
      status.textContent = "Waiting for your wallet…";
      try {
        const [address] = await provider.request({ method: "eth_requestAccounts" });
        const chainId = parseInt(await provider.request({ method: "eth_chainId" }), 16) || 1;
        const { message } = await api("POST", "/api/admin/challenge", { address, chainId });
        status.textContent = "Sign the message in your wallet (no transaction, no gas).";
        const signature = await provider.request({ method: "personal_sign", params: [utf8Hex(message), address] });
        me = await api("POST", "/api/admin/session", { message, signature });
        status.dataset.state = "done";
        location.hash = location.hash && location.hash !== "#/" ? location.hash : "#/groups";
        render();
      } catch (error) {
        status.dataset.state = "error";
        status.textContent = error && error.code === 4001 ? "You cancelled in your wallet; nothing was signed." : (error && error.message) || "Sign-in failed.";
        button.disabled = false;
      }
    };
    put(main,
      el("div", { className: "sign-in card" }, [
        el("h1", { textContent: "Sign in to the dashboard" }),
        el("p", { className: "hint", textContent: "Admins sign in with their wallet. Signing a message proves the address is yours; it costs nothing." }),
        button,
        status,
      ]),
    );
  }

  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/admin/session");
    } catch (error) {
      say(error.message);
      return;
    }
    me = null;
    location.hash = "#/";
    render();
    say("Signed out");
  });

  // ---- groups list ---------------------------------------------------------------------------------------------

  async function groupsView(offset) {
    put(main, el("h1", { textContent: "Groups" }), el("p", { className: "hint", textContent: "Loading…" }));
    let data;
    try {
      data = await api("GET", `/api/groups?offset=${offset}&limit=${PAGE}`);
    } catch (error) {
      put(main, el("h1", { textContent: "Groups" }), problemBox(error, () => groupsView(offset)));
      return;
    }
    const rows = data.groups.map((g) =>
      el("tr", {}, [
        el("td", {}, [el("a", { href: `#/groups/${g.groupId}`, textContent: g.name })]),
        el("td", { textContent: String(g.memberCount) }),
        el("td", { textContent: String(g.last24h.joins) }),
        el("td", { textContent: String(g.last24h.denials) }),
        el("td", { textContent: g.joinLinkEnabled ? "on" : "off" }),
        el("td", { textContent: when(g.createdAt) }),
      ]),
    );
    put(main,
      el("div", { className: "title-row" }, [el("h1", { textContent: "Groups" }), el("a", { className: "button", href: "#/new", textContent: "New group" })]),
      data.total === 0
        ? el("p", { textContent: "No groups yet. Create the first one." })
        : table("Groups, newest first", ["Name", "Members", "Joins (24 h)", "Denials (24 h)", "Join link", "Created"], rows),
      pager(offset, data.total, groupsView),
    );
  }

  // ---- one group -----------------------------------------------------------------------------------------------

  function qrSvg(url) {
    const qr = window.qrcode(0, "M");
    qr.addData(url);
    qr.make();
    const n = qr.getModuleCount();
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `-4 -4 ${n + 8} ${n + 8}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "QR code of the join link");
    svg.setAttribute("class", "qr");
    const bg = document.createElementNS(ns, "rect");
    for (const [k, v] of Object.entries({ x: -4, y: -4, width: n + 8, height: n + 8, fill: "#fff" })) bg.setAttribute(k, String(v));
    svg.append(bg);
    let d = "";
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c} ${r}h1v1h-1z`;
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "#000");
    svg.append(path);
    return svg;
  }

  function csvOf(members) {
    const cell = (v) => {
      const s = v === null || v === undefined ? "" : String(v);
      // Leading = + - @ would be a formula in a spreadsheet.
      const safe = /^[=+\-@]/.test(s) ? `'${s}` : s;
      return /[",\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
    };
    const lines = [["address", "joinedAt", "via", "exempt", "inboxId"].join(",")];
    for (const m of members) lines.push([m.address, m.joinedAt, m.via, m.exempt, m.inboxId].map(cell).join(","));
    return `${lines.join("\n")}\n`;
  }

  async function groupView(groupId) {
    put(main, el("p", { className: "hint", textContent: "Loading…" }));
    let group;
    try {
      group = await api("GET", `/api/groups/${groupId}`);
    } catch (error) {
      put(main, el("h1", { textContent: "Group" }), problemBox(error, () => groupView(groupId)));
      return;
    }
    put(main,
      el("div", { className: "title-row" }, [el("h1", { textContent: group.name }), el("a", { className: "button secondary", href: `#/groups/${groupId}/edit`, textContent: "Edit group" })]),
      group.description ? el("p", { className: "description", textContent: group.description }) : null,
      el("p", {}, [el("strong", { textContent: "To join: " }), document.createTextNode(group.requirement)]),
      el("div", { className: "grid" }, [linkPanel(group), messagesPanel(groupId)]),
      membersPanel(group),
      auditPanel(groupId),
    );
  }

  function linkPanel(group) {
    const box = el("div", { id: "link-box" });
    const draw = (g) => {
      const url = el("input", { type: "text", readOnly: true, value: g.joinUrl, className: "mono", id: "join-url" });
      const copy = el("button", {
        type: "button",
        className: "secondary",
        textContent: "Copy link",
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(g.joinUrl);
            say("Link copied");
          } catch {
            url.select();
            say("Select the link and copy it");
          }
        },
      });
      const act = (action, label) =>
        el("button", {
          type: "button",
          className: "secondary",
          textContent: label,
          onclick: async () => {
            if (action === "rotate" && !confirm("Make a new link? The current one stops working at once.")) return;
            try {
              draw(await api("POST", `/api/groups/${g.groupId}/join-link`, { action }));
              say(action === "rotate" ? "New link made; the old one no longer works" : action === "disable" ? "Join link turned off" : "Join link turned on");
            } catch (error) {
              box.append(problemBox(error));
            }
          },
        });
      put(box,
        el("p", { id: "link-state", className: g.joinLinkEnabled ? "ok" : "bad", textContent: g.joinLinkEnabled ? "The join link is on." : "The join link is off: it shows “not found”." }),
        field("Join link", url),
        el("div", { className: "actions" }, [copy, act("rotate", "New link"), g.joinLinkEnabled ? act("disable", "Turn off") : act("enable", "Turn on")]),
        g.joinLinkEnabled ? qrSvg(g.joinUrl) : null,
      );
    };
    draw(group);
    return section("Join link", [box], "link");
  }

  function membersPanel(group) {
    const members = group.members.filter((m) => !m.isAdmin);
    const results = el("div", { role: "status", "aria-live": "polite", className: "results" });
    const addresses = el("textarea", { rows: 2, placeholder: "0x… (one or more, separated by spaces, commas or lines)" });
    const addForm = el("form", { className: "inline-form" }, [field("Add members (the rules are not checked)", addresses), el("button", { type: "submit", className: "primary", textContent: "Add" })]);
    addForm.onsubmit = async (event) => {
      event.preventDefault();
      const list = addresses.value.split(/[\s,;]+/).filter(Boolean);
      fieldError(addresses, list.length ? "" : "Enter at least one address");
      if (!list.length) return;
      try {
        const { results: out } = await api("POST", `/api/groups/${group.groupId}/members`, { addresses: list });
        say(out.map((r) => `${short(r.address)}: ${r.result}`).join("; "));
        await groupView(group.groupId);
      } catch (error) {
        fieldError(addresses, error.message);
      }
    };
    const rows = members.map((m) =>
      el("tr", {}, [
        el("td", { className: "mono", textContent: text(m.address) }),
        el("td", { textContent: when(m.joinedAt) }),
        el("td", { textContent: m.via ? VIA[m.via] || m.via : "—" }),
        el("td", { textContent: m.exempt ? "exempt" : "checked daily" }),
        el("td", {}, [
          m.address
            ? el("button", {
                type: "button",
                className: "danger",
                textContent: "Remove",
                "aria-label": `Remove ${m.address}`,
                onclick: async () => {
                  if (!confirm(`Remove ${m.address} from the group?`)) return;
                  try {
                    const { results: out } = await api("DELETE", `/api/groups/${group.groupId}/members`, { addresses: [m.address] });
                    say(`${short(m.address)}: ${out[0].result}`);
                    await groupView(group.groupId);
                  } catch (error) {
                    put(results, problemBox(error));
                  }
                },
              })
            : null,
        ]),
      ]),
    );
    const exportButton = el("button", {
      type: "button",
      className: "secondary",
      textContent: "Export CSV",
      onclick: () => {
        const blob = new Blob([csvOf(members)], { type: "text/csv" });
        const a = el("a", { href: URL.createObjectURL(blob), download: `members-${group.groupId.slice(0, 12)}.csv` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 1000);
      },
    });
    return section(
      `Members (${members.length})`,
      [
        el("div", { className: "actions" }, [exportButton]),
        members.length ? table("Members", ["Address", "Joined", "Through", "Re-verification", ""], rows) : el("p", { textContent: "Nobody has joined yet." }),
        addForm,
        results,
      ],
      "members",
    );
  }

  function auditPanel(groupId) {
    const type = el("select", {}, [
      el("option", { value: "all", textContent: "Everything" }),
      el("option", { value: "changes", textContent: "Changes (joins, adds, removals, edits, link changes, messages, errors)" }),
      el("option", { value: "denials", textContent: "Denials" }),
    ]);
    const list = el("div", { id: "audit-list" });
    const load = async (offset) => {
      try {
        const data = await api("GET", `/api/groups/${groupId}/audit?type=${type.value}&offset=${offset}&limit=${PAGE}`);
        const rows = data.entries.map((e) =>
          el("tr", {}, [
            el("td", { textContent: when(e.at) }),
            el("td", { textContent: WHAT[`${e.action} ${e.outcome}`] || `${e.action} · ${e.outcome}` }),
            el("td", { className: "mono", textContent: short(e.address) }),
            el("td", { textContent: e.actor ? (e.actor === "api-key" ? "API key" : short(e.actor)) : SOURCE[e.source] || e.source }),
            el("td", { textContent: e.reason || "" }),
          ]),
        );
        put(list, data.entries.length ? table("Audit log", ["When", "What", "Wallet", "By", "Reason"], rows) : el("p", { textContent: "Nothing here yet." }), pager(offset, data.total, load));
      } catch (error) {
        put(list, problemBox(error, () => load(offset)));
      }
    };
    type.onchange = () => load(0);
    load(0);
    return section("Audit log", [field("Show", type), list], "audit");
  }

  function messagesPanel(groupId) {
    const list = el("ol", { className: "messages", id: "message-list" });
    const box = el("textarea", { rows: 2, maxLength: 4000 });
    const form = el("form", { className: "inline-form" }, [field("Message to the group (sent by the backend wallet)", box), el("button", { type: "submit", className: "primary", textContent: "Send" })]);
    const status = el("div", { role: "status", "aria-live": "polite" });
    const load = async () => {
      try {
        const { messages } = await api("GET", `/api/groups/${groupId}/messages?limit=20`);
        const texts = messages.filter((m) => m.kind === "text" || m.text);
        put(list, ...texts.map((m) => el("li", {}, [el("span", { className: "meta", textContent: `${short(m.sender)} · ${when(m.sentAt)}` }), el("p", { textContent: m.text || "" })])));
        if (!texts.length) put(list, el("li", { className: "hint", textContent: "No messages yet." }));
      } catch (error) {
        put(status, problemBox(error, load));
      }
    };
    form.onsubmit = async (event) => {
      event.preventDefault();
      fieldError(box, box.value.trim() ? "" : "Write something first");
      if (!box.value.trim()) return;
      try {
        await api("POST", `/api/groups/${groupId}/messages`, { text: box.value });
        box.value = "";
        say("Message sent");
        await load();
      } catch (error) {
        fieldError(box, error.message);
      }
    };
    load();
    return section("Messages", [list, form, status], "messages");
  }

  // ---- create / edit with the rules builder -------------------------------------------------------------------

  const RULE_TYPES = [
    ["erc20", "ERC-20 token balance"],
    ["erc721", "ERC-721 NFT (count or token id)"],
    ["erc1155", "ERC-1155 token"],
    ["poap", "POAP of an event"],
    ["allowlist", "Allowlist of addresses"],
    ["json", "Other rule (JSON, kept as is)"],
  ];
  const KNOWN = new Set(["erc20", "erc721", "erc1155", "poap", "allowlist"]);

  /** One rule row of the builder; `read()` answers the rule as the API takes it, `fields` maps API field → input. */
  function ruleRow(rule, chains, index, remove) {
    const kind = rule && rule.type && KNOWN.has(rule.type) ? rule.type : rule && rule.type === "open" ? "erc20" : "json";
    const type = el("select", {}, RULE_TYPES.map(([value, label]) => el("option", { value, textContent: label, selected: value === kind })));
    const body = el("div", { className: "rule-fields" });
    const says = el("p", { className: "hint chain-says" });
    const row = el("fieldset", { className: "rule" }, [el("legend", { textContent: `Rule ${index + 1}` }), field("Kind", type), body, says]);
    /** Shows what the chain said about this rule's contract (symbol, decimals, collection name), if anything. */
    const setSays = (r) => {
      const parts = r ? [r.symbol, r.decimals !== undefined ? `${r.decimals} decimals` : null, r.name].filter((x) => x !== null && x !== undefined && x !== "") : [];
      says.textContent = parts.length ? `The chain says: ${parts.join(", ")}` : "";
    };
    let fields = {};
    const input = (name, label, value, hint, attrs) => {
      const node = el("input", { type: "text", value: value === undefined || value === null ? "" : String(value), ...(attrs || {}) });
      fields[name] = node;
      return field(label, node, hint);
    };
    const chainPicker = (value) => {
      // A saved rule's chain that lost its RPC stays selected (saving then says what to set) rather than changing silently.
      const offered = value !== undefined && !chains.some((c) => c.chainId === value) ? [...chains, { chainId: value, name: `chain ${value}, no RPC configured` }] : chains;
      const node = el("select", {}, offered.map((c) => el("option", { value: String(c.chainId), textContent: `${c.name} (${c.chainId})`, selected: c.chainId === value })));
      fields.chainId = node;
      return field("Chain (only chains with an RPC configured)", node);
    };
    const draw = (t, r) => {
      fields = {};
      r = r || {};
      setSays(r);
      if (t === "erc20") put(body, chainPicker(r.chainId), input("token", "Token contract", r.token, "0x…", { className: "mono" }), input("minBalance", "Minimum balance (whole tokens)", r.minBalance, "e.g. 100 or 0.5"));
      else if (t === "erc721") put(body, chainPicker(r.chainId), input("contract", "NFT contract", r.contract, "0x…", { className: "mono" }), input("minCount", "At least this many (leave empty with a token id)", r.minCount === undefined && r.tokenId === undefined ? 1 : r.minCount), input("tokenId", "Or this token id", r.tokenId));
      else if (t === "erc1155") put(body, chainPicker(r.chainId), input("contract", "Contract", r.contract, "0x…", { className: "mono" }), input("tokenId", "Token id", r.tokenId), input("minBalance", "Minimum balance", r.minBalance === undefined ? 1 : r.minBalance));
      else if (t === "poap") put(body, input("eventId", "POAP event id", r.eventId));
      else if (t === "allowlist") {
        const area = el("textarea", { rows: 4, value: (r.addresses || []).join("\n") });
        fields.addresses = area;
        const upload = el("input", { type: "file", accept: ".csv,text/csv,text/plain" });
        upload.onchange = async () => {
          const file = upload.files && upload.files[0];
          if (!file) return;
          const found = (await file.text()).match(/0x[0-9a-fA-F]{40}/g) || [];
          area.value = [...new Set([...area.value.split(/\s+/).filter(Boolean), ...found])].join("\n");
          say(`${found.length} addresses read from ${file.name}`);
        };
        put(body, field("Addresses (one a line)", area), field("Or upload a CSV of addresses", upload));
      } else {
        const area = el("textarea", { rows: 5, className: "mono", value: JSON.stringify(r && Object.keys(r).length ? r : { type: "open" }, null, 2) });
        fields.json = area;
        put(body, field("Rule as JSON (kept exactly as written)", area, "A rule this builder does not know is shown here and saved as it is."));
      }
    };
    draw(kind, rule);
    type.onchange = () => draw(type.value, type.value === "json" ? rule : {});
    row.append(el("button", { type: "button", className: "danger", textContent: `Remove rule ${index + 1}`, onclick: remove }));
    return {
      node: row,
      setSays,
      /** Whether every field a check needs is filled (optional ones aside), so checking now will not nag. */
      complete() {
        return Object.entries(fields).every(([k, f]) => k === "tokenId" || k === "minCount" || f.tagName === "SELECT" || f.type === "file" || f.value.trim() !== "");
      },
      get fields() {
        return fields;
      },
      read() {
        const t = type.value;
        const v = (name) => fields[name].value.trim();
        if (t === "json") {
          try {
            return JSON.parse(fields.json.value);
          } catch {
            throw { field: fields.json, message: "This is not valid JSON" };
          }
        }
        if (t === "allowlist") return { type: t, addresses: v("addresses").split(/[\s,;]+/).filter(Boolean) };
        if (t === "poap") return { type: t, eventId: Number(v("eventId")) };
        const out = { type: t, chainId: Number(fields.chainId ? fields.chainId.value : 0) };
        if (t === "erc20") Object.assign(out, { token: v("token"), minBalance: v("minBalance") });
        if (t === "erc721") Object.assign(out, { contract: v("contract") }, v("tokenId") ? { tokenId: v("tokenId") } : { minCount: Number(v("minCount") || "1") });
        if (t === "erc1155") Object.assign(out, { contract: v("contract"), tokenId: v("tokenId"), minBalance: v("minBalance") });
        return out;
      },
    };
  }

  async function editView(groupId) {
    put(main, el("p", { className: "hint", textContent: "Loading…" }));
    let group;
    let chains;
    try {
      [group, { chains }] = await Promise.all([groupId ? api("GET", `/api/groups/${groupId}`) : Promise.resolve(null), api("GET", "/api/status")]);
    } catch (error) {
      put(main, problemBox(error, () => editView(groupId)));
      return;
    }
    const name = el("input", { type: "text", value: group ? group.name : "", required: true });
    const description = el("textarea", { rows: 3, value: group ? group.description : "" });
    const mode = el("select", {}, [el("option", { value: "all", textContent: "all of the rules" }), el("option", { value: "any", textContent: "any one of the rules" })]);
    const rulesBox = el("div", { id: "rules" });
    const rows = [];
    const top = group ? group.rules : { type: "open" };
    let initial = [];
    if ("all" in top) initial = top.all;
    else if ("any" in top) {
      initial = top.any;
      mode.value = "any";
    } else if (top.type !== "open") initial = [top];
    const redraw = () => put(rulesBox, ...rows.map((r) => r.node), rows.length ? null : el("p", { className: "hint", textContent: "No rules: anyone may join." }));
    const addRow = (rule) => {
      const row = ruleRow(rule, chains, rows.length, () => {
        rows.splice(rows.indexOf(row), 1);
        redraw();
      });
      rows.push(row);
      redraw();
    };
    initial.forEach(addRow);
    redraw();
    const status = el("div", { role: "status", "aria-live": "polite" });
    const preview = el("p", { id: "rules-preview", className: "preview", role: "status", "aria-live": "polite" });
    const rulesValue = () => {
      const list = rows.map((r) => r.read());
      return list.length === 0 ? { type: "open" } : list.length === 1 ? list[0] : { [mode.value]: list };
    };
    const clearRuleErrors = () => {
      for (const input of rulesBox.querySelectorAll("[aria-invalid]")) fieldError(input, "");
    };
    /** Places an API error's issues at their fields; answers whether any found one. */
    const placeIssues = (error) => {
      let placed = false;
      for (const issue of error.issues || []) {
        const target = inputFor(issue.path, { name, description }, rows, rulesValue());
        if (target) {
          fieldError(target, issue.message);
          placed = true;
        }
      }
      return placed;
    };
    /** The rules as the form states them, or undefined after marking the field that cannot be read. */
    const readRules = () => {
      clearRuleErrors();
      try {
        return rulesValue();
      } catch (bad) {
        fieldError(bad.field, bad.message);
        return undefined;
      }
    };
    // The create checks, run without creating anything: what the chain says, the join page's words, or the errors.
    let checking = 0;
    const check = async () => {
      const mine = ++checking;
      const rules = readRules();
      if (!rules) return;
      preview.textContent = "Checking with the chain…";
      try {
        const out = await api("POST", "/api/create?dryRun=1", { name: name.value.trim() || "Preview", rules });
        if (mine !== checking) return;
        const checked = rows.length === 1 ? [out.rules] : out.rules[mode.value] || [];
        rows.forEach((row, i) => row.setSays(checked[i]));
        preview.textContent = `People will read: ${out.requirement}`;
      } catch (error) {
        if (mine !== checking) return;
        preview.textContent = placeIssues(error) ? "" : error.message;
      }
    };
    let timer = 0;
    rulesBox.addEventListener("change", () => {
      clearTimeout(timer);
      if (rows.length && rows.every((r) => r.complete())) timer = setTimeout(check, 250);
    });
    // Who would lose access under the rules as they stand in the form (PATCH …?dryRun=1: nothing is changed).
    const lossBox = el("div", { id: "loss-preview", role: "status", "aria-live": "polite" });
    const previewLoss = async () => {
      const rules = readRules();
      if (!rules) return;
      put(lossBox, el("p", { className: "hint", textContent: "Checking every member against these rules…" }));
      try {
        const out = await api("PATCH", `/api/groups/${groupId}?dryRun=1`, { rules });
        const lines = out.wouldLoseAccess.map((m) => el("li", {}, [el("code", { textContent: m.address }), document.createTextNode(`: ${m.reason}`)]));
        put(
          lossBox,
          el("p", {
            textContent:
              out.wouldLoseAccess.length === 0
                ? `Nobody would lose access (${out.checked} checked, ${out.exempt} added by an admin and exempt).`
                : `${out.wouldLoseAccess.length} of ${out.checked} members checked would lose access:`,
          }),
          ...(lines.length ? [el("ul", { className: "loss-list" }, lines)] : []),
          ...(out.unchecked.length ? [el("p", { className: "hint", textContent: `${out.unchecked.length} could not be checked right now; try again later.` })] : []),
        );
      } catch (error) {
        if (placeIssues(error)) put(lossBox);
        else put(lossBox, problemBox(error, previewLoss));
      }
    };
    const form = el("form", { id: "group-form" }, [
      field("Name", name),
      field("Description", description),
      section("Who may join", [field("People need", mode), rulesBox, el("div", { className: "actions" }, [el("button", { type: "button", className: "secondary", textContent: "Add a rule", onclick: () => addRow({ type: "erc20" }) }), el("button", { type: "button", className: "secondary", textContent: "Check with the chain", onclick: check })]), preview], "rules-section"),
      ...(groupId ? [section("Before saving", [el("button", { type: "button", className: "secondary", textContent: "Preview who would lose access", onclick: previewLoss }), lossBox], "loss-section")] : []),
      el("button", { type: "submit", className: "primary", textContent: groupId ? "Save changes" : "Create group" }),
      status,
    ]);
    form.onsubmit = async (event) => {
      event.preventDefault();
      for (const input of form.querySelectorAll("[aria-invalid]")) fieldError(input, "");
      put(status);
      const rules = readRules();
      if (!rules) return;
      const body = { name: name.value, description: description.value, rules };
      try {
        const saved = groupId ? await api("PATCH", `/api/groups/${groupId}`, body) : await api("POST", "/api/create", body);
        say(groupId ? "Saved" : "Group created");
        location.hash = `#/groups/${saved.groupId}`;
      } catch (error) {
        if (!placeIssues(error)) put(status, problemBox(error));
      }
    };
    put(main, el("h1", { textContent: groupId ? `Edit ${group.name}` : "New group" }), form);
  }

  /** The input an API issue path (`rules.any.1.token`, `name`) is about, so the error is shown next to it. */
  function inputFor(path, top, rows, rules) {
    const parts = String(path || "").split(".");
    if (parts[0] === "name") return top.name;
    if (parts[0] === "description") return top.description;
    if (parts[0] !== "rules") return null;
    let index = 0;
    let rest = parts.slice(1);
    if (rest[0] === "all" || rest[0] === "any") {
      index = Number(rest[1]);
      rest = rest.slice(2);
    } else if (!("type" in rules)) return null;
    const row = rows[index];
    if (!row) return null;
    const fields = row.fields;
    return fields[rest[0]] || fields.json || Object.values(fields).find((f) => f.tagName !== "SELECT") || null;
  }

  // ---- status --------------------------------------------------------------------------------------------------

  async function statusView() {
    put(main, el("h1", { textContent: "Status" }), el("p", { className: "hint", textContent: "Loading…" }));
    let s;
    try {
      s = await api("GET", "/api/status");
    } catch (error) {
      put(main, el("h1", { textContent: "Status" }), problemBox(error, statusView));
      return;
    }
    const run = s.cron.lastRun;
    const dl = (pairs) => el("dl", { className: "facts" }, pairs.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: v })]));
    put(main,
      el("h1", { textContent: "Status" }),
      section("XMTP", [dl([["Environment", s.xmtp.env], ["Protocol", s.xmtp.network === "d14n" ? "decentralized (d14n)" : "V3"], ["Gateway", s.xmtp.gatewayConfigured ? "configured" : "not configured"], ["Last switch", s.xmtp.lastSwitch ? `${s.xmtp.lastSwitch.protocol} on ${when(s.xmtp.lastSwitch.at)}` : "never"]])], "xmtp"),
      section("Chains with an RPC", [s.chains.length ? el("ul", {}, s.chains.map((c) => el("li", { textContent: `${c.name} (${c.chainId})` }))) : el("p", { textContent: "None: only open and allowlist rules can be used." }), dl([["Holdings read from", s.eligibilityProvider], ["Link service", s.linkService ? "configured" : "none (own join links)"], ["Admins", String(s.admins)]])], "chains"),
      section("Daily re-verification", [
        dl(
          run
            ? [["Last run", when(run.at)], ["Groups checked", String(run.groupsChecked)], ["Members checked", String(run.membersChecked)], ["Removed", String(run.removed)], ["Reconciled", String(run.reconciled)], ["Skipped (chain unavailable)", String(run.skipped)], ["Groups failed", String(run.failedGroups)], ["Ended because", run.stoppedBy]]
            : [["Last run", s.cron.configured ? "not run yet" : "CRON_SECRET is not set: the cron cannot run"]],
        ),
      ], "cron"),
    );
  }

  // ---- routing -------------------------------------------------------------------------------------------------

  async function render() {
    if (!me) {
      try {
        me = await api("GET", "/api/admin/session");
      } catch {
        signInView();
        return;
      }
    }
    nav.hidden = false;
    who.textContent = `Signed in as ${short(me.address)}`;
    const hash = location.hash.replace(/^#\/?/, "");
    const parts = hash.split("/");
    // Only a group id goes into an API path: a crafted link cannot point the page at another endpoint.
    if (parts[0] === "groups" && parts[1] && !/^[0-9a-f]{1,128}$/.test(parts[1])) parts.splice(1);
    for (const link of nav.querySelectorAll("a")) link.removeAttribute("aria-current");
    const current = nav.querySelector(`a[href="#/${parts[0] || "groups"}"]`);
    if (current) current.setAttribute("aria-current", "page");
    if (parts[0] === "groups" && parts[1] && parts[2] === "edit") await editView(parts[1]);
    else if (parts[0] === "groups" && parts[1]) await groupView(parts[1]);
    else if (parts[0] === "new") await editView(null);
    else if (parts[0] === "status") await statusView();
    else await groupsView(0);
    main.dataset.view = parts[0] || "groups";
    main.focus();
  }
  window.addEventListener("hashchange", render);
  render();
})();
