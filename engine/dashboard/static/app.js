/* groupsense facilitator view. Hand-written, no dependencies, nothing fetched from
   anywhere but this server. Snapshots arrive by server-sent events (at least one a
   second); optional signals are shown only when a snapshot carries them. */
"use strict";

const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
const WINDOW_MS = 10 * 60 * 1000;
const BASE_PARTICIPANT = new Set([
  "participant_id", "role", "connected", "speaking", "speaking_s", "share",
  "since_last_spoke_s", "unknown_s", "cues", "segments",
]);
const BASE_SESSION = new Set(["session_id", "seq", "session_ms", "participants", "events", "final", "alerts"]);
const LABELS = {
  speaking_s: "Speaking time",
  share_5min: "Share, last 5 min", share_5m: "Share, last 5 min", share_last_5min: "Share, last 5 min",
  share_1min: "Share, last minute", share_1m: "Share, last minute", share_last_1min: "Share, last minute",
  turns: "Turns", backchannels: "Short responses (mm-hm)", mean_turn_s: "Typical turn",
  longest_turn_s: "Longest turn", interruptions_made: "Interrupted others",
  interruptions_received: "Was interrupted", overlap_s: "Talking over others",
  response_latency_s: "Typical wait before answering", unknown_s: "No audio",
  balance_entropy: "Balance", balance_gini: "Inequality (Gini)",
  group_silence_s: "Group silence now", current_silence_s: "Group silence now",
  current_group_silence_s: "Group silence now",
  facilitator_share: "Facilitator share", turn_rate_per_min: "Turns per minute",
  group_silences: "Group silences", group_silence_total_s: "Group silence in all",
  longest_group_silence_s: "Longest group silence",
};

const $ = (id) => document.getElementById(id);
const state = {
  me: null, sessions: [], sid: null, source: null, retry: null, last: null,
  order: [], runs: new Map(), prevMs: null, tiles: new Map(), announced: new Set(),
  acked: new Set(), pollTimer: null,
};

/* -- formatting ---------------------------------------------------------------------- */
function clock(s) {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
}
const pct = (x) => Math.round(x * 100) + "%";
function humanize(key) {
  if (LABELS[key]) return LABELS[key];
  const t = key.replace(/_(s|ms)$/, "").replace(/_/g, " ");
  return t.charAt(0).toUpperCase() + t.slice(1);
}
function formatValue(key, v) {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v !== "number") return String(v);
  if (v < 0 && /latency|share/.test(key)) return "none yet";
  if (key === "share_vs_equal") return v.toFixed(1) + "× an even share";
  if (key.endsWith("_ms")) return clock(v / 1000);
  if (key.endsWith("_s")) return v < 60 ? v.toFixed(1) + " s" : clock(v);
  if (/share|ratio|fraction/.test(key)) return pct(v);
  if (/entropy|gini|balance/.test(key)) return v.toFixed(2);
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
function pick(obj, names) {
  for (const n of names) if (obj && obj[n] !== undefined && obj[n] !== null) return obj[n];
  return undefined;
}
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/* -- nicknames: this browser only ------------------------------------------------------ */
const nickKey = (pid) => "groupsense.nick." + state.sid + "." + pid;
function nickname(pid) {
  try { return localStorage.getItem(nickKey(pid)) || ""; } catch { return ""; }
}
function setNickname(pid, name) {
  try {
    if (name) localStorage.setItem(nickKey(pid), name); else localStorage.removeItem(nickKey(pid));
  } catch { /* storage may be disabled: nicknames then last for this page only */ }
}
const display = (pid) => nickname(pid) || pid;

/* -- server calls ------------------------------------------------------------------------ */
async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  if (opts.body !== undefined) opts.headers["Content-Type"] = "application/json";
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { ok: res.ok, status: res.status, data };
}

function setStatus(text) { $("status").textContent = text; }

function show(view) {
  for (const id of ["signin", "waiting", "live"]) $(id).hidden = id !== view;
  const signedIn = view !== "signin";
  $("sign-out").hidden = !signedIn || !(state.me && state.me.auth);
  $("session-pick").hidden = !signedIn || state.sessions.length < 2;
}

async function start() {
  const me = await api("/api/me");
  if (!me.ok) { showSignin(); return; }
  state.me = me.data;
  await refreshSessions();
  schedulePoll();
}

/* Poll the session list: every second while waiting for a session to start (so the
   first seconds are not missed), every few seconds once one is streaming. */
function schedulePoll() {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(async () => {
    await refreshSessions();
    if (state.me) schedulePoll();
  }, state.source ? 4000 : 1000);
}

function showSignin(message) {
  stopStream();
  clearTimeout(state.pollTimer);
  state.me = null;
  show("signin");
  setStatus("Not signed in");
  $("signin-error").textContent = message || "";
  $("token").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $("token").value.trim();
  if (!token) { $("signin-error").textContent = "Paste your facilitator token first."; return; }
  const res = await api("/api/login", { method: "POST", body: JSON.stringify({ token }) });
  $("token").value = "";
  if (!res.ok) {
    $("signin-error").textContent = "That token was not accepted: " +
      ((res.data && res.data.error) || "error " + res.status) + ".";
    $("token").focus();
    return;
  }
  $("signin-error").textContent = "";
  state.me = res.data;
  await refreshSessions();
  schedulePoll();
}

async function signOut() {
  await api("/api/logout", { method: "POST", body: "{}" });
  showSignin("Signed out.");
}

async function refreshSessions() {
  const res = await api("/api/sessions");
  if (res.status === 401) { showSignin("Your sign-in has expired; please sign in again."); return; }
  if (!res.ok) return;
  state.sessions = res.data.sessions;
  const sel = $("session-select");
  const ids = state.sessions.map((s) => s.session_id);
  if (sel.options.length !== ids.length || [...sel.options].some((o, i) => o.value !== ids[i])) {
    sel.replaceChildren(...state.sessions.map((s) => el("option", { value: s.session_id, text: s.session_id })));
  }
  for (const o of sel.options) {
    const s = state.sessions.find((x) => x.session_id === o.value);
    o.textContent = s.session_id + (s.status === "live" ? "" : " (" + s.status + ")");
  }
  let want = state.sid && ids.includes(state.sid) ? state.sid : null;
  if (!want) {
    const live = state.sessions.find((s) => s.status === "live");
    want = (live || state.sessions[0] || {}).session_id || null;
  }
  if (want) sel.value = want;
  if (!want) {
    show("waiting");
    $("waiting-text").textContent = "No session is open to you yet. This page updates by itself.";
    setStatus("Signed in" + (state.me.subject ? " as " + state.me.subject : ""));
    return;
  }
  const info = state.sessions.find((s) => s.session_id === want);
  if (want !== state.sid) selectSession(want);
  else if (!state.source && info.status !== "waiting" && !(state.last && state.last.final)) openStream();
  if (info.status === "waiting" && !state.last) {
    show("waiting");
    $("waiting-text").textContent = "Session " + want + " has not started yet: nobody has joined. This page updates by itself.";
    setStatus("Waiting for session " + want);
  }
  $("session-pick").hidden = state.sessions.length < 2;
}

function selectSession(sid) {
  stopStream();
  state.sid = sid;
  state.last = null; state.prevMs = null; state.order = []; state.runs = new Map();
  state.tiles = new Map(); state.announced = new Set(); state.acked = new Set();
  $("tiles").replaceChildren(); $("alerts").replaceChildren(); $("acked").replaceChildren();
  $("timeline").replaceChildren();
  const link = $("report-link");
  link.href = "/report/" + encodeURIComponent(sid);
  link.hidden = false;
  const info = state.sessions.find((s) => s.session_id === sid);
  if (info && info.status !== "waiting") openStream();
}

function stopStream() {
  if (state.source) { state.source.close(); state.source = null; }
  clearTimeout(state.retry);
}

function openStream() {
  stopStream();
  const sid = state.sid;
  const es = new EventSource("/api/sessions/" + encodeURIComponent(sid) + "/events");
  state.source = es;
  es.addEventListener("snapshot", (ev) => {
    if (state.sid !== sid) return;
    render(JSON.parse(ev.data));
  });
  es.addEventListener("history", (ev) => {
    // What the server saw before this page connected: the last ten minutes at once.
    if (state.sid !== sid || state.last) return;
    const h = JSON.parse(ev.data);
    for (const [pid, runs] of Object.entries(h.runs)) {
      const copy = runs.map((r) => [r[0], r[1]]);
      if (h.speaking.includes(pid) && copy.length) copy[copy.length - 1].open = true;
      state.runs.set(pid, copy);
    }
    state.prevMs = h.session_ms;
  });
  es.addEventListener("end", () => { stopStream(); });
  es.addEventListener("expired", () => { showSignin("Your token has expired; please sign in again."); });
  es.onerror = () => {
    if (state.last && state.last.final) { stopStream(); return; }
    if (es.readyState === EventSource.CLOSED) {
      state.source = null;
      setStatus("Connection lost; retrying…");
      state.retry = setTimeout(() => { if (state.sid === sid) refreshSessions(); }, 2000);
    } else {
      setStatus("Reconnecting…");
    }
  };
}

/* -- rendering ------------------------------------------------------------------------------ */
function colourOf(pid) {
  let i = state.order.indexOf(pid);
  if (i < 0) { state.order.push(pid); i = state.order.length - 1; }
  return PALETTE[i % PALETTE.length];
}

function render(snap) {
  state.last = snap;
  show("live");
  const when = new Date().toLocaleTimeString();
  setStatus(snap.final
    ? "Session " + snap.session_id + " has ended"
    : "Live · session " + snap.session_id + " · updated " + when);
  updateHistory(snap);
  renderStrip(snap);
  renderTiles(snap);
  renderTimeline(snap);
  renderFollows(snap);
  renderAlerts(snap);
}

function renderStrip(snap) {
  const items = [];
  const add = (label, value, extra) => items.push(el("div", {}, el("dt", { text: label }), el("dd", {}, value, extra || null)));
  add("Session time", clock(snap.session_ms / 1000));
  const here = snap.participants.filter((p) => p.connected).length;
  add("People connected", here + " of " + snap.participants.length);
  let bal = pick(snap, ["balance_entropy", "balance", "entropy"]);
  if (bal && typeof bal === "object") bal = pick(bal, ["entropy", "balance_entropy"]);
  if (typeof bal === "number") {
    const word = bal >= 0.9 ? "Even" : bal >= 0.75 ? "Fairly even" : "Uneven";
    const fill = el("span", { class: "fill" });
    fill.style.width = Math.round(bal * 100) + "%";
    const gauge = el("span", {
      class: "gauge", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1",
      "aria-valuenow": bal.toFixed(2), "aria-valuetext": word + ", " + bal.toFixed(2) + " of 1",
      "aria-label": "Participation balance",
    }, el("span", { class: "track" }, fill), el("span", { text: word + " · " + bal.toFixed(2) }));
    add("Participation balance", gauge);
  }
  const silence = pick(snap, ["current_group_silence_s", "group_silence_s", "current_silence_s"]);
  if (typeof silence === "number") add("Group silence now", silence >= 1 ? clock(silence) : "none");
  const fac = pick(snap, ["facilitator_share"]);
  if (typeof fac === "number" && fac >= 0) add("Facilitator share", pct(fac));
  const shown = new Set(["balance_entropy", "balance", "entropy", "current_group_silence_s",
    "current_silence_s", "facilitator_share"]);
  const rest = [];
  for (const [k, v] of Object.entries(snap)) {
    if (BASE_SESSION.has(k) || shown.has(k)) continue;
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "string") {
      rest.push(el("dt", { text: humanize(k) }), el("dd", { text: formatValue(k, v) }));
    }
  }
  if (rest.length) {
    items.push(el("div", { class: "more strip-more" }, el("details", {},
      el("summary", { text: "More session figures" }), el("dl", {}, ...rest))));
  }
  $("strip").replaceChildren(...items);
}

function sinceText(p) {
  if (!p.connected) return "Offline" + (p.since_last_spoke_s >= 0 ? " · last spoke " + clock(p.since_last_spoke_s) + " ago" : "");
  if (p.speaking) return "Speaking now";
  if (p.since_last_spoke_s < 0) return "Has not spoken yet";
  return "Quiet for " + clock(p.since_last_spoke_s);
}

function cueWords(c) {
  if (typeof c === "string") return { name: humanize(c), evidence: "" };
  const name = c.label || humanize(String(c.kind || c.name || "cue"));
  let ev = pick(c, ["text", "message", "description", "evidence"]);
  if (ev && typeof ev === "object") {
    const parts = [];
    for (const [k, v] of Object.entries(ev)) {
      if (k === "duration_s" && typeof v === "number") parts.push("for " + clock(v));
      else if (/deviation|baseline/.test(k) && typeof v === "number") parts.push(v.toFixed(1) + " times their usual variation");
      else if (k === "confidence" && typeof v === "number") parts.push("confidence " + pct(v));
      else parts.push(humanize(k).toLowerCase() + " " + formatValue(k, v));
    }
    ev = parts.join(", ");
  }
  return { name, evidence: ev ? String(ev) : "" };
}

function buildTile(pid) {
  const nameId = "name-" + pid;
  const name = el("span", { class: "name" });
  const role = el("span", { class: "role", text: "Facilitator", hidden: "" });
  const rename = el("button", { type: "button", class: "rename", text: "Rename" });
  const title = el("h3", { id: nameId }, name, role);
  const pidLine = el("span", { class: "pid" });
  const dot = el("span", { class: "dot", "aria-hidden": "true" });
  const nowText = el("span", { class: "now-text" });
  const fill = el("span", { class: "fill" });
  const even = el("span", { class: "even", "aria-hidden": "true" });
  const bar = el("span", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "100" }, fill, even);
  const pctEl = el("span", { class: "pct" });
  const since = el("p", { class: "since" });
  const recent = el("p", { class: "since recent", hidden: "" });
  const cues = el("ul", { class: "cues", "aria-label": "Cues" });
  const moreList = el("dl");
  const more = el("details", { class: "more" }, el("summary", { text: "More figures" }), moreList);
  const nickForm = el("form", { class: "nick-form", hidden: "" });
  const nickInput = el("input", { type: "text", maxlength: "40", "aria-label": "Nickname, kept only in this browser" });
  nickForm.append(nickInput, el("button", { type: "submit", text: "Save" }),
    el("button", { type: "button", text: "Cancel", onclick: () => closeNick() }));
  const li = el("li", { class: "tile", "data-pid": pid },
    el("header", {}, title, pidLine),
    nickForm,
    el("p", { class: "now" }, dot, nowText),
    el("div", { class: "share" }, bar, pctEl),
    recent, since, cues, el("div", { class: "tile-foot" }, more, rename));
  li.setAttribute("aria-labelledby", nameId);
  function closeNick() { nickForm.hidden = true; rename.hidden = false; rename.focus(); }
  rename.addEventListener("click", () => {
    nickInput.value = nickname(pid);
    nickForm.hidden = false; rename.hidden = true; nickInput.focus();
  });
  nickInput.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); closeNick(); } });
  nickForm.addEventListener("submit", (e) => {
    e.preventDefault();
    setNickname(pid, nickInput.value.trim());
    closeNick();
    if (state.last) render(state.last);
  });
  return { li, name, role, rename, pidLine, nowText, fill, even, bar, pctEl, recent, since, cues, more, moreList };
}

function renderTiles(snap) {
  const list = $("tiles");
  const n = snap.participants.length;
  const seen = new Set();
  snap.participants.forEach((p, index) => {
    seen.add(p.participant_id);
    let t = state.tiles.get(p.participant_id);
    if (!t) { t = buildTile(p.participant_id); state.tiles.set(p.participant_id, t); }
    if (list.children[index] !== t.li) list.insertBefore(t.li, list.children[index] || null);
    const colour = colourOf(p.participant_id);
    t.li.style.setProperty("--swatch", colour);
    t.li.classList.toggle("speaking", !!p.speaking);
    t.li.classList.toggle("offline", !p.connected);
    const nick = nickname(p.participant_id);
    t.name.textContent = nick || p.participant_id;
    t.pidLine.textContent = nick ? p.participant_id : "";
    t.role.hidden = p.role !== "facilitator";
    t.rename.setAttribute("aria-label", "Rename " + (nick || p.participant_id) + " (kept only in this browser)");
    t.nowText.textContent = p.speaking ? "Speaking now" : p.connected ? "Not speaking" : "Offline";
    t.fill.style.width = Math.min(100, p.share * 100).toFixed(1) + "%";
    t.even.style.left = (100 / Math.max(n, 1)).toFixed(1) + "%";
    t.bar.setAttribute("aria-valuenow", String(Math.round(p.share * 100)));
    t.bar.setAttribute("aria-valuetext", pct(p.share) + " of all talk; an even share is " + pct(1 / Math.max(n, 1)));
    t.bar.setAttribute("aria-label", "Share of talk for " + (nick || p.participant_id));
    t.pctEl.textContent = pct(p.share);
    const recent = [];
    if (typeof p.share_5min === "number") recent.push("last 5 min " + pct(p.share_5min));
    if (typeof p.share_1min === "number") recent.push("last minute " + pct(p.share_1min));
    t.recent.textContent = recent.join(" · ");
    t.recent.hidden = recent.length === 0;
    t.since.textContent = sinceText(p);
    t.since.hidden = !!p.speaking && p.connected;
    const cues = Array.isArray(p.cues) ? p.cues : [];
    t.cues.replaceChildren(...cues.map((c) => {
      const w = cueWords(c);
      return el("li", { class: "cue" }, el("span", { class: "cue-name", text: w.name }),
        w.evidence ? el("span", { class: "cue-ev", text: " · " + w.evidence }) : null);
    }));
    t.cues.hidden = cues.length === 0;
    const rows = [["speaking_s", p.speaking_s]];
    for (const [k, v] of Object.entries(p)) {
      if (BASE_PARTICIPANT.has(k)) continue;
      if (typeof v === "number" || typeof v === "boolean" || typeof v === "string") rows.push([k, v]);
    }
    if (p.unknown_s > 0) rows.push(["unknown_s", p.unknown_s]);
    t.moreList.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: humanize(k) }), el("dd", { text: formatValue(k, v) })]));
  });
  for (const [pid, t] of state.tiles) if (!seen.has(pid)) { t.li.remove(); state.tiles.delete(pid); }
}

/* who spoke when: from segments when the snapshot has them, else from speaking flags */
function updateHistory(snap) {
  const now = snap.session_ms;
  const prev = state.prevMs === null ? now : Math.min(state.prevMs, now);
  for (const p of snap.participants) {
    if (Array.isArray(p.segments)) {
      state.runs.set(p.participant_id, p.segments.map((s) => Array.isArray(s)
        ? [s[0] * 1000, s[1] * 1000] : [s.start_s * 1000, s.end_s * 1000]));
      continue;
    }
    const runs = state.runs.get(p.participant_id) || [];
    const open = runs.length && runs[runs.length - 1].open;
    if (p.speaking) {
      if (open) runs[runs.length - 1][1] = now;
      else { const r = [prev, now]; r.open = true; runs.push(r); }
    } else if (open) {
      runs[runs.length - 1][1] = now; runs[runs.length - 1].open = false;
    }
    while (runs.length && runs[0][1] < now - WINDOW_MS) runs.shift();
    state.runs.set(p.participant_id, runs);
  }
  state.prevMs = now;
}

function renderTimeline(snap) {
  const now = snap.session_ms;
  const from = Math.max(0, now - WINDOW_MS);
  const span = Math.max(now - from, 60000);
  const rowH = 26, x0 = 150, w = 820, people = snap.participants;
  const h = rowH * people.length;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + (x0 + w + 10) + " " + (h + 24));
  svg.setAttribute("role", "img");
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    svg.append(e); return e;
  };
  const x = (ms) => x0 + (w * (ms - from)) / span;
  const step = span <= 120000 ? 15000 : span <= 300000 ? 30000 : 60000;
  for (let t = Math.ceil(from / step) * step; t <= from + span + 1e-6; t += step) {
    const anchor = t === from ? "start" : t + step > from + span ? "end" : "middle";
    mk("line", { x1: x(t), y1: 0, x2: x(t), y2: h, stroke: "#d6d6d0" });
    mk("text", { x: x(t), y: h + 16, "font-size": 12, "text-anchor": anchor, fill: "#4a4a4a" }, clock(t / 1000));
  }
  const summary = [];
  people.forEach((p, i) => {
    const y = i * rowH;
    const colour = colourOf(p.participant_id);
    mk("text", { x: x0 - 8, y: y + rowH * 0.65, "font-size": 13, "text-anchor": "end", fill: "#1a1a1a" }, display(p.participant_id));
    mk("line", { x1: x0, y1: y + rowH - 1, x2: x0 + w, y2: y + rowH - 1, stroke: "#ecece6" });
    let spoke = 0;
    for (const [a, b] of state.runs.get(p.participant_id) || []) {
      const lo = Math.max(a, from), hi = Math.min(b, now);
      if (hi <= lo) continue;
      spoke += hi - lo;
      mk("rect", { x: x(lo), y: y + 5, width: Math.max((w * (hi - lo)) / span, 1.5), height: rowH - 10, fill: colour });
    }
    summary.push(display(p.participant_id) + " " + clock(spoke / 1000));
  });
  svg.setAttribute("aria-label", "Who spoke when, " + clock(from / 1000) + " to " + clock(now / 1000) + ". Speaking time in this window: " + summary.join(", ") + ".");
  $("timeline").replaceChildren(svg);
}

function renderFollows(snap) {
  const raw = pick(snap, ["who_follows_whom", "transitions", "follows"]);
  const wrap = $("follows-wrap");
  if (!raw) { wrap.hidden = true; return; }
  let ids = snap.participants.map((p) => p.participant_id);
  let get;
  if (Array.isArray(raw) && raw.length && raw[0] && raw[0].from_id !== undefined) {
    const n = new Map(raw.map((t) => [t.from_id + "\u0000" + t.to_id, t.count]));
    get = (i, j) => n.get(ids[i] + "\u0000" + ids[j]) || 0;
  } else if (Array.isArray(raw) && !raw.length) { wrap.hidden = true; return; }
  else if (Array.isArray(raw)) get = (i, j) => (raw[i] || [])[j] || 0;
  else if (raw.matrix && raw.participants) { ids = raw.participants; get = (i, j) => (raw.matrix[i] || [])[j] || 0; }
  else get = (i, j) => ((raw[ids[i]] || {})[ids[j]]) || 0;
  const head = el("tr", {}, el("th", { text: "" }), ...ids.map((id) => el("th", { scope: "col", text: display(id) })));
  const rows = ids.map((a, i) => el("tr", {}, el("th", { scope: "row", text: display(a) }),
    ...ids.map((b, j) => el("td", { text: i === j ? "–" : String(get(i, j)) }))));
  $("follows").replaceChildren(el("table", {}, el("caption", { class: "muted", text: "Rows: who spoke; columns: who spoke next" }),
    el("thead", {}, head), el("tbody", {}, ...rows)));
  wrap.hidden = false;
}

function alertWords(a) {
  let text = pick(a, ["message", "text", "description", "detail"]) || humanize(String(a.kind || "alert"));
  for (const pid of state.order) text = text.split(pid).join(display(pid)); // nicknames
  const meta = [];
  const who = pick(a, ["participant_id", "participant"]);
  if (who) meta.push("about " + display(who));
  const since = pick(a, ["since_ms", "started_ms", "start_ms"]);
  const sinceS = pick(a, ["since_s", "start_s"]);
  if (typeof since === "number") meta.push("since " + clock(since / 1000));
  else if (typeof sinceS === "number") meta.push("since " + clock(sinceS));
  if (typeof a.cleared_s === "number" && a.cleared_s >= 0) meta.push("cleared at " + clock(a.cleared_s));
  return { text, meta: meta.join(" · ") };
}

function renderAlerts(snap) {
  const alerts = Array.isArray(snap.alerts) ? snap.alerts : [];
  const open = [], done = [];
  for (const a of alerts) {
    if (!a || a.id === undefined) continue;
    if (a.acknowledged) state.acked.add(String(a.id));
    (state.acked.has(String(a.id)) ? done : open).push(a);
  }
  const item = (a, acked) => {
    const w = alertWords(a);
    const li = el("li", { class: "alert", "data-alert-id": String(a.id) },
      el("p", { class: "text", text: w.text }), w.meta ? el("p", { class: "meta", text: w.meta }) : null);
    if (!acked) {
      li.append(el("button", {
        type: "button", class: "ack", text: "Acknowledge",
        "aria-label": "Acknowledge: " + w.text, onclick: () => acknowledge(String(a.id)),
      }));
    }
    return li;
  };
  // Rebuild only when the set changes, so a focused button keeps its focus.
  const sig = JSON.stringify([open.map((a) => [a.id, alertWords(a)]), done.map((a) => a.id)]);
  if (sig !== state.alertSig) {
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest(".alert");
    const focusId = focused ? focused.getAttribute("data-alert-id") : null;
    $("alerts").replaceChildren(...open.map((a) => item(a, false)));
    $("acked").replaceChildren(...done.map((a) => item(a, true)));
    state.alertSig = sig;
    if (focusId) {
      const again = $("alerts").querySelector('[data-alert-id="' + CSS.escape(focusId) + '"] button');
      if (again) again.focus();
    }
  }
  $("alerts-empty").hidden = open.length > 0;
  $("acked-count").textContent = String(done.length);
  const fresh = open.filter((a) => !state.announced.has(String(a.id)));
  if (fresh.length) {
    fresh.forEach((a) => state.announced.add(String(a.id)));
    $("announce").textContent = "New alert: " + fresh.map((a) => alertWords(a).text).join("; ");
  }
}

async function acknowledge(id) {
  const res = await api("/api/sessions/" + encodeURIComponent(state.sid) + "/alerts/" + encodeURIComponent(id) + "/ack",
    { method: "POST", body: "{}" });
  if (res.status === 401) { showSignin("Your sign-in has expired; please sign in again."); return; }
  if (!res.ok) { $("announce").textContent = "Could not acknowledge: " + ((res.data && res.data.error) || res.status); return; }
  state.acked.add(id);
  if (state.last) renderAlerts(state.last);
  $("announce").textContent = "Alert acknowledged.";
  const next = $("alerts").querySelector("button.ack");
  (next || $("alerts-heading")).focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("alerts-heading").setAttribute("tabindex", "-1");
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("session-select").addEventListener("change", (e) => { selectSession(e.target.value); refreshSessions(); });
  start();
});
