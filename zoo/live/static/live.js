// The live page: microphone -> AudioWorklet -> float32 frames -> WebSocket /stream -> one row and
// one timeline block per speech segment; the provisional label while a segment is being spoken;
// a file box that posts to /predict. Plain JS, no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#d1495b", "#8f5aa8", "#5d6d7e", "#edae49", "#66a182", "#3b6fd6", "#e07b39",
                 "#2e8b8b", "#a0522d", "#7a7a2e"];
const PX_PER_SECOND = 40;
const FRAME_SECONDS = 0.05;

const live = {
  card: null, colors: {}, ws: null, ctx: null, media: null, node: null,
  drawnTo: 0,  // seconds of timeline drawn (ticks)
  segments: [],  // every segment event received, in order (the table and the timeline show them)
  partial: null,
};
window.zooLive = live;  // for the browser test and for curious users

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function fmt(x, d = 2) { return (typeof x === "number") ? x.toFixed(d) : ""; }

function dimsOf(e) {
  // stream events carry arousal/valence/dominance at the top level; /predict nests them in "dims"
  const out = {};
  for (const d of (live.card ? live.card.dims : [])) {
    if (typeof e[d] === "number") out[d] = e[d];
    else if (e.dims && typeof e.dims[d] === "number") out[d] = e.dims[d];
  }
  return out;
}

function labelOf(e) {
  if (e.label !== null && e.label !== undefined) return String(e.label);
  const d = dimsOf(e);
  return Object.keys(d).map((k) => `${k[0].toUpperCase()} ${fmt(d[k])}`).join(" ") || "?";
}

function colorOf(e) {
  if (e.label !== null && e.label !== undefined && live.colors[e.label]) return live.colors[e.label];
  const d = dimsOf(e);
  if (typeof d.valence === "number") {  // dimension-only: hue from valence (red -> green), lightness from arousal
    const hue = Math.round(120 * d.valence);
    const light = Math.round(60 - 25 * (typeof d.arousal === "number" ? d.arousal : 0.5));
    return `hsl(${hue}, 60%, ${light}%)`;
  }
  return "#5d6d7e";
}

function topProb(e) {
  const p = e.probs || {};
  return (e.label in p) ? p[e.label] : null;
}

async function loadCard() {
  try {
    const r = await fetch("/card");
    const c = await r.json();
    live.card = c;
    c.class_names.forEach((n, i) => { live.colors[n] = PALETTE[i % PALETTE.length]; });
    const what = c.class_names.length ? c.class_names.join(", ") : "";
    const dims = c.dims.length ? c.dims.join(", ") : "";
    $("model").textContent = `${c.name} (${c.model}, ${c.sample_rate} Hz): ` +
      [what, dims].filter(Boolean).join("; ");
    $("legend").innerHTML = c.class_names.map(
      (n) => `<span style="--c:${live.colors[n]}">${escapeHtml(n)}</span>`).join("");
    if (!c.dims.length) document.body.classList.add("no-dims");
    for (const d of ["arousal", "valence", "dominance"]) {
      if (!c.dims.includes(d)) document.querySelectorAll(`.dim-${d}`).forEach((el) => { el.style.display = "none"; });
    }
    if (c.dims.length) setupDimsChart(c.dims);
    if (c.needs_text) {
      $("mic").disabled = true;
      $("status").textContent = "this model reads transcripts: the microphone mode needs an audio model";
    }
  } catch (err) {
    $("model").textContent = "cannot read /card: " + err;
  }
}

// -- the timeline and the table -----------------------------------------------------------------------
function placeBlock(el, e) {
  el.style.left = `${e.start * PX_PER_SECOND}px`;
  el.style.width = `${Math.max(2, (e.end - e.start) * PX_PER_SECOND)}px`;
}

function extendTimeline(t) {
  const tl = $("timeline");
  const want = Math.ceil(t + 5);  // seconds drawn: a little room ahead of the newest audio
  if (want > live.drawnTo) {
    tl.style.width = `${want * PX_PER_SECOND}px`;
    const svg = $("dims-chart");
    if (svg) svg.setAttribute("width", want * PX_PER_SECOND);
    for (let s = Math.ceil(live.drawnTo / 5) * 5; s <= want; s += 5) {  // a tick every 5 s
      const k = document.createElement("div");
      k.className = "tick"; k.style.left = `${s * PX_PER_SECOND}px`; k.textContent = `${s} s`;
      tl.appendChild(k);
    }
    live.drawnTo = want + 1;
  }
  const wrap = tl.parentElement;  // keep the newest audio in view
  wrap.scrollLeft = Math.max(0, t * PX_PER_SECOND - wrap.clientWidth + 80);
}

function showSegment(e) {
  live.segments.push(e);
  const dims = dimsOf(e);
  const block = document.createElement("div");
  block.className = "seg";
  block.style.background = colorOf(e);
  placeBlock(block, e);
  const dimText = Object.keys(dims).map((k) => `${k[0]} ${fmt(dims[k])}`).join(" ");
  const hasLabel = e.label !== null && e.label !== undefined;
  block.innerHTML = (hasLabel ? `<div>${escapeHtml(labelOf(e))}</div>` : "") +
    (dimText ? `<div class="dims">${dimText}</div>` : "");
  block.title = `${fmt(e.start)}–${fmt(e.end)} s: ${labelOf(e)}`;
  $("timeline").appendChild(block);
  extendTimeline(e.end);

  const tr = document.createElement("tr");
  tr.className = "segment";
  tr.dataset.start = e.start; tr.dataset.end = e.end; tr.dataset.label = e.label ?? "";
  const p = topProb(e);
  tr.innerHTML = `<td>${fmt(e.start)}</td><td>${fmt(e.end)}</td>` +
    `<td class="label"><span class="swatch" style="color:${colorOf(e)}">■</span> ${escapeHtml(labelOf(e))}</td>` +
    `<td>${p === null ? "" : fmt(p)}</td>` +
    ["arousal", "valence", "dominance"].map((d) => `<td class="dim-col dim-${d}"` +
      `${live.card && !live.card.dims.includes(d) ? ' style="display:none"' : ""}>${fmt(dims[d])}</td>`).join("");
  addDimsPoint(e, dims);
  const body = document.querySelector("#segments tbody");
  body.insertBefore(tr, body.firstChild);  // newest first

  setNow(e, false);
}

// arousal / valence / dominance of each segment as lines under the blocks (dimensional models)
const DIM_COLORS = {arousal: "#d1495b", valence: "#3b6fd6", dominance: "#66a182"};
const CHART_TOP = 62, CHART_HEIGHT = 56;

function setupDimsChart(dims) {
  const tl = $("timeline");
  tl.classList.add("with-dims");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.id = "dims-chart";
  svg.setAttribute("height", CHART_HEIGHT);
  svg.style.top = `${CHART_TOP}px`;
  for (const y of [0, 0.5, 1]) {  // 0, the middle and 1 of the 0-1 scale
    const line = document.createElementNS(svg.namespaceURI, "line");
    line.setAttribute("x1", 0); line.setAttribute("x2", 100000);
    line.setAttribute("y1", (1 - y) * (CHART_HEIGHT - 4) + 2); line.setAttribute("y2", (1 - y) * (CHART_HEIGHT - 4) + 2);
    line.setAttribute("class", "grid");
    svg.appendChild(line);
  }
  for (const d of dims) {
    const pl = document.createElementNS(svg.namespaceURI, "polyline");
    pl.id = `dim-line-${d}`;
    pl.setAttribute("fill", "none");
    pl.setAttribute("stroke", DIM_COLORS[d] || "#444");
    pl.setAttribute("stroke-width", "2");
    svg.appendChild(pl);
  }
  tl.appendChild(svg);
  $("legend").innerHTML += dims.map((d) => `<span style="--c:${DIM_COLORS[d] || "#444"}">${d} (line, 0-1)</span>`).join("");
}

function addDimsPoint(e, dims) {
  for (const d of Object.keys(dims)) {
    const pl = $(`dim-line-${d}`);
    if (!pl) continue;
    const x = ((e.start + e.end) / 2) * PX_PER_SECOND;
    const y = (1 - dims[d]) * (CHART_HEIGHT - 4) + 2;
    pl.setAttribute("points", `${pl.getAttribute("points") || ""} ${x.toFixed(1)},${y.toFixed(1)}`.trim());
  }
}

function showPartial(e) {
  live.partial = e;
  let block = $("partial-block");
  if (!block) {
    block = document.createElement("div");
    block.id = "partial-block";
    block.className = "seg partial";
    $("timeline").appendChild(block);
  }
  placeBlock(block, e);
  block.textContent = labelOf(e) + "…";
  extendTimeline(e.end);
  setNow(e, true);
}

function clearPartial() {
  const b = $("partial-block");
  if (b) b.remove();
  live.partial = null;
}

function setNow(e, speaking) {
  $("now").className = "now " + (speaking ? "speaking" : "idle");
  $("now-label").textContent = labelOf(e);
  $("now-label").style.color = colorOf(e);
  const p = topProb(e);
  const dims = dimsOf(e);
  const parts = [speaking ? "speaking (provisional)" : `segment ${fmt(e.start)}–${fmt(e.end)} s`];
  if (p !== null) parts.push(`p ${fmt(p)}`);
  for (const k of Object.keys(dims)) parts.push(`${k} ${fmt(dims[k])}`);
  $("now-detail").textContent = parts.join(" · ");
}

function onEvent(e) {
  if (e.type === "segment") { clearPartial(); showSegment(e); }
  else if (e.type === "partial") showPartial(e);
  else if (e.type === "ready") $("status").textContent = `streaming at ${e.sample_rate} Hz`;
  else if (e.type === "error") { $("status").innerHTML = `<span class="error">${escapeHtml(e.error)}</span>`; }
  else if (e.type === "end") $("status").textContent = `stopped after ${fmt(e.seconds, 1)} s of audio`;
  else if (e.type === "state" && e.speech === false) clearPartial();
}

// -- the microphone -------------------------------------------------------------------------------
async function start() {
  $("mic").disabled = true;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("this page needs a secure context for the microphone: open it as http://127.0.0.1 or https");
    }
    // the raw signal, as a file would give it: no echo cancelling, denoising or gain riding
    live.media = await navigator.mediaDevices.getUserMedia({audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    live.ctx = new AudioContext();
    const ctx = live.ctx;
    const src = ctx.createMediaStreamSource(live.media);
    $("status").textContent = "connecting…";  // the server's "ready" says "streaming at ... Hz"
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/stream`);
    ws.binaryType = "arraybuffer";
    live.ws = ws;
    const send = (buf) => { if (ws.readyState === WebSocket.OPEN) ws.send(buf); };
    const opened = new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    ws.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (err) { console.error(err); } };
    ws.onclose = (ev) => {
      if (live.ws === ws) stopAudio();
      if (ev.code !== 1000 && !$("status").querySelector(".error")) $("status").textContent = `closed (${ev.code}) ${ev.reason}`;
    };
    await opened;
    // the first message declares the frames: the AudioContext's own rate, float32; the server resamples
    ws.send(JSON.stringify({sample_rate: ctx.sampleRate, format: "float32"}));
    const frameSize = Math.round(ctx.sampleRate * FRAME_SECONDS);
    const mute = ctx.createGain();
    mute.gain.value = 0;  // the graph must reach the destination to be pulled; nothing is heard
    if (ctx.audioWorklet) {
      await ctx.audioWorklet.addModule("/static/capture-worklet.js");
      live.node = new AudioWorkletNode(ctx, "zoo-capture", {processorOptions: {frameSize}});
      live.node.port.onmessage = (m) => send(m.data);
    } else {  // older browsers: ScriptProcessor (deprecated, main thread)
      live.node = ctx.createScriptProcessor(4096, 1, 1);
      live.node.onaudioprocess = (ev) => send(new Float32Array(ev.inputBuffer.getChannelData(0)).buffer);
    }
    src.connect(live.node);
    live.node.connect(mute);
    mute.connect(ctx.destination);
    $("mic").textContent = "Stop";
    $("mic").classList.add("stop");
  } catch (err) {
    stopAudio();
    $("status").innerHTML = `<span class="error">${escapeHtml(err.message || err)}</span>`;
  }
  $("mic").disabled = false;
}

function stopAudio() {
  if (live.node) { live.node.disconnect(); live.node = null; }
  if (live.media) { live.media.getTracks().forEach((t) => t.stop()); live.media = null; }
  if (live.ctx) { live.ctx.close(); live.ctx = null; }
  $("mic").textContent = "Start microphone";
  $("mic").classList.remove("stop");
}

function stop() {
  const ws = live.ws;
  stopAudio();
  // "end" flushes the segment being spoken; the server answers with it, then {"type": "end"}, then closes
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "end"}));
}

$("mic").addEventListener("click", () => (live.media ? stop() : start()));

// -- one file -------------------------------------------------------------------------------------
$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = $("upload-result");
  const file = $("file").files[0];
  if (!file) { out.innerHTML = '<span class="error">choose an audio file first</span>'; return; }
  const form = new FormData();
  form.append("file", file);
  if ($("text").value.trim()) form.append("text", $("text").value.trim());
  out.textContent = "labelling…";
  try {
    const r = await fetch("/predict", {method: "POST", body: form});
    const res = await r.json();
    if (!r.ok) { out.innerHTML = `<span class="error">${escapeHtml(res.error || r.statusText)}</span>`; return; }
    const probs = Object.entries(res.probs || {}).sort((a, b) => b[1] - a[1]);
    const dims = dimsOf(res);
    out.innerHTML = `<p><b id="upload-label">${escapeHtml(labelOf(res))}</b> · ${escapeHtml(res.file)}` +
      (res.duration ? ` · ${fmt(res.duration, 1)} s` : "") + "</p>" +
      probs.map(([n, p]) => `<div class="bar"><span class="name">${escapeHtml(n)}</span>` +
        `<span class="fill" style="width:${Math.round(p * 300)}px;background:${live.colors[n] || "#3b6fd6"}"></span>` +
        `<span>${fmt(p)}</span></div>`).join("") +
      Object.keys(dims).map((k) => `<div class="bar"><span class="name">${k}</span>` +
        `<span class="fill" style="width:${Math.round(dims[k] * 300)}px"></span><span>${fmt(dims[k])}</span></div>`).join("");
  } catch (err) {
    out.innerHTML = `<span class="error">${escapeHtml(err.message || err)}</span>`;
  }
});

loadCard();
