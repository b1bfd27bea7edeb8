/* tinyscope layer viewer: every captured tensor of the panel images, drawn on canvases.
 * Plain JS, no library, no network: the data is the JSON in #ts-viewer-data (see viewer.py
 * for its format). window.tinyscopeViewer exposes the state and the colour rule for tests. */
(function () {
  "use strict";
  const dataNode = document.getElementById("ts-viewer-data");
  if (!dataNode) return;
  const D = JSON.parse(dataNode.textContent);
  const $ = (id) => document.getElementById(id);

  function bytes(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  const int8 = (s) => new Int8Array(bytes(s).buffer);
  function uint32(s) {
    const b = bytes(s);
    const out = new Uint32Array(b.length >> 2);
    for (let i = 0; i < out.length; i++) {
      out[i] = (b[4 * i] | (b[4 * i + 1] << 8) | (b[4 * i + 2] << 16) | (b[4 * i + 3] << 24)) >>> 0;
    }
    return out;
  }
  const LUT = { value: bytes(D.colormaps.value), diff: bytes(D.colormaps.diff) };

  const VIEWS = {
    device: { label: "device", kind: "value", unit: "real value" },
    tflm: { label: "desktop TFLM", kind: "value", unit: "real value" },
    float: { label: "float model", kind: "value", unit: "real value" },
    "device-tflm": { label: "device − TFLM", kind: "diff", unit: "LSB" },
    "xnnpack-device": { label: "XNNPACK − device", kind: "diff", unit: "LSB" },
    "float-device": { label: "float − device", kind: "diff", unit: "LSB" },
  };

  const layers = D.layers;
  const byTensor = new Map(layers.map((l) => [l.tensor, l]));
  const state = { image: 0, tensor: D.selected, view: "device", sort: "index", topk: 64 };
  const cache = new Map();

  /* The streams of one layer for one image (position in D.images): Int8Array device, tflm,
   * xnnpack and Float64Array real float values (or null). */
  function streams(L, img) {
    const key = L.tensor + ":" + img;
    if (cache.has(key)) return cache.get(key);
    const dev = int8(L.device[img]);
    let tflm = null;
    if (L.tflm) tflm = L.tflm[img] === "same" ? dev : int8(L.tflm[img]);
    let xnn = null;
    if (L.xnnpack_minus_device) {
      xnn = new Int8Array(dev);
      const e = L.xnnpack_minus_device[img];
      if (e.dense) {
        const d = int8(e.dense);
        for (let i = 0; i < d.length; i++) xnn[i] = dev[i] + d[i];
      } else {
        const pos = uint32(e.sparse[0]);
        const val = int8(e.sparse[1]);
        for (let i = 0; i < pos.length; i++) xnn[pos[i]] = dev[pos[i]] + val[i];
      }
    }
    let flt = null;
    if (L.float) {
      const e = L.float[img];
      const d = int8(e.drift);
      flt = new Float64Array(d.length);
      for (let i = 0; i < d.length; i++) flt[i] = (dev[i] - L.zero_point + d[i] * e.step) * L.scale;
    }
    const s = { dev, tflm, xnn, flt };
    cache.set(key, s);
    return s;
  }

  const real = (L, q) => (q - L.zero_point) * L.scale;

  function available(L, view) {
    if (view === "tflm" || view === "device-tflm") return !!L.tflm;
    if (view === "xnnpack-device") return !!L.xnnpack_minus_device;
    if (view === "float" || view === "float-device") return !!L.float;
    return true;
  }

  /* The values the current view shows, as a Float64Array over the whole tensor. */
  function viewValues(L, s, view) {
    const n = s.dev.length;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const d = s.dev[i];
      switch (view) {
        case "device": out[i] = real(L, d); break;
        case "tflm": out[i] = real(L, s.tflm[i]); break;
        case "float": out[i] = s.flt[i]; break;
        case "device-tflm": out[i] = d - s.tflm[i]; break;
        case "xnnpack-device": out[i] = s.xnn[i] - d; break;
        case "float-device": out[i] = s.flt[i] / L.scale - (d - L.zero_point); break;
      }
    }
    return out;
  }

  /* Colour scale: value views share [min, max] of the device's real values of this layer and
   * image (so device, TFLM and float compare directly); difference views are symmetric,
   * +-max(1, max |difference|). */
  function scaleFor(L, s, view, values) {
    if (VIEWS[view].kind === "value") {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < s.dev.length; i++) {
        const v = real(L, s.dev[i]);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (!(hi > lo)) hi = lo + L.scale;
      return { lo, hi, lut: LUT.value };
    }
    let m = 1;
    for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
    return { lo: -m, hi: m, lut: LUT.diff };
  }
  function colourIndex(v, sc) {
    const t = Math.round(((v - sc.lo) / (sc.hi - sc.lo)) * 255);
    return Math.min(255, Math.max(0, t));
  }
  function paint(img, k, v, sc) {
    const c = colourIndex(v, sc) * 3;
    img.data[k] = sc.lut[c];
    img.data[k + 1] = sc.lut[c + 1];
    img.data[k + 2] = sc.lut[c + 2];
    img.data[k + 3] = 255;
  }

  /* Per channel statistics of one image, for the sorted view. */
  function channelStats(L, s) {
    const C = L.layout === "image" ? L.display_shape[2] : 1;
    const n = s.dev.length / C;
    const st = [];
    for (let c = 0; c < C; c++) {
      let energy = 0, drift = 0, xd = 0;
      for (let p = 0; p < n; p++) {
        const i = p * C + c;
        const v = real(L, s.dev[i]);
        energy += v * v;
        if (s.flt) { const d = s.flt[i] / L.scale - (s.dev[i] - L.zero_point); drift += d * d; }
        if (s.xnn && s.xnn[i] !== s.dev[i]) xd++;
      }
      st.push({ c, energy: Math.sqrt(energy / n), drift: Math.sqrt(drift / n), xnn: xd });
    }
    return st;
  }

  function fmt(v, d) {
    if (!isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(2);
    return v.toFixed(d === undefined ? 3 : d);
  }

  function drawColourbar(sc, L, view) {
    const bar = $("ts-colourbar");
    const ctx = bar.getContext("2d");
    const img = ctx.createImageData(bar.width, 1);
    for (let x = 0; x < bar.width; x++) {
      const c = Math.round((x / (bar.width - 1)) * 255) * 3;
      img.data[4 * x] = sc.lut[c]; img.data[4 * x + 1] = sc.lut[c + 1];
      img.data[4 * x + 2] = sc.lut[c + 2]; img.data[4 * x + 3] = 255;
    }
    for (let y = 0; y < bar.height; y++) ctx.putImageData(img, 0, y);
    const v = VIEWS[view];
    const name = layerName(L);
    $("ts-cb-lo").textContent = fmt(sc.lo);
    $("ts-cb-hi").textContent = fmt(sc.hi);
    $("ts-cb-label").textContent = v.kind === "value"
      ? name + " output: " + v.label + ", " + v.unit + " (scale of the device values)"
      : name + " output: " + v.label + ", in LSB of the tensor scale " + fmt(L.scale, 5);
  }

  function layerName(L) {
    return (L.op_index === null ? "input" : "op " + L.op_index + " " + L.op) +
      (L.name ? " (" + L.name + ")" : "");
  }

  function readout(L, s, i, where) {
    const parts = [where];
    const d = s.dev[i];
    parts.push("device q=" + d + " → " + fmt(real(L, d), 4));
    if (s.tflm) parts.push("TFLM q=" + s.tflm[i] + (s.tflm[i] === d ? " (equal)" : " (" + (d - s.tflm[i]) + " LSB)"));
    if (s.xnn) parts.push("XNNPACK q=" + s.xnn[i] + (s.xnn[i] === d ? "" : " (" + (s.xnn[i] - d > 0 ? "+" : "") + (s.xnn[i] - d) + " LSB)"));
    if (s.flt) parts.push("float " + fmt(s.flt[i], 4) + " (" + fmt(s.flt[i] / L.scale - (d - L.zero_point), 2) + " LSB from device)");
    $("ts-readout").textContent = parts.join(" · ");
  }

  function zoomFor(h, w) {
    return Math.max(1, Math.min(32, Math.floor(112 / Math.max(h, w))));
  }

  function drawImageLayout(L, s, values, sc) {
    const [H, W, C] = L.display_shape;
    const grid = $("ts-grid");
    let order = channelStats(L, s);
    if (state.sort === "drift") order.sort((a, b) => b.drift - a.drift || a.c - b.c);
    else if (state.sort === "energy") order.sort((a, b) => b.energy - a.energy || a.c - b.c);
    else if (state.sort === "xnnpack") order.sort((a, b) => b.xnn - a.xnn || a.c - b.c);
    const k = state.topk > 0 ? Math.min(state.topk, C) : C;
    const shown = order.slice(0, k);
    $("ts-shown").textContent = k < C ? "showing " + k + " of " + C + " channels" : C + " channels";
    const z = zoomFor(H, W);
    for (const st of shown) {
      const fig = document.createElement("figure");
      fig.className = "ts-tile";
      const cv = document.createElement("canvas");
      cv.width = W; cv.height = H;
      cv.style.width = W * z + "px"; cv.style.height = H * z + "px";
      cv.dataset.channel = st.c;
      const ctx = cv.getContext("2d");
      const img = ctx.createImageData(W, H);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) paint(img, 4 * (y * W + x), values[(y * W + x) * C + st.c], sc);
      }
      ctx.putImageData(img, 0, 0);
      cv.addEventListener("mousemove", (ev) => {
        const x = Math.min(W - 1, Math.floor(ev.offsetX / z));
        const y = Math.min(H - 1, Math.floor(ev.offsetY / z));
        readout(L, s, (y * W + x) * C + st.c, "ch " + st.c + " (y " + y + ", x " + x + ")");
      });
      const cap = document.createElement("figcaption");
      let note = "ch " + st.c;
      if (state.sort === "drift") note += " · " + fmt(st.drift, 2) + " LSB";
      else if (state.sort === "energy") note += " · " + fmt(st.energy, 3);
      else if (state.sort === "xnnpack") note += " · " + st.xnn + " differ";
      cap.textContent = note;
      fig.append(cv, cap);
      grid.append(fig);
    }
  }

  function drawMatrixLayout(L, s, values, sc) {
    const [T, C] = L.display_shape;
    const z = Math.max(1, Math.min(16, Math.floor(640 / Math.max(T, C))));
    const fig = document.createElement("figure");
    fig.className = "ts-matrix";
    const cv = document.createElement("canvas");
    cv.width = C; cv.height = T;
    cv.style.width = C * z + "px"; cv.style.height = T * z + "px";
    cv.dataset.channel = "all";
    const ctx = cv.getContext("2d");
    const img = ctx.createImageData(C, T);
    for (let i = 0; i < T * C; i++) paint(img, 4 * i, values[i], sc);
    ctx.putImageData(img, 0, 0);
    cv.addEventListener("mousemove", (ev) => {
      const c = Math.min(C - 1, Math.floor(ev.offsetX / z));
      const t = Math.min(T - 1, Math.floor(ev.offsetY / z));
      readout(L, s, t * C + c, "row " + t + ", feature " + c);
    });
    const cap = document.createElement("figcaption");
    cap.textContent = "rows: position 0…" + (T - 1) + " (top to bottom) · columns: feature 0…" + (C - 1);
    fig.append(cv, cap);
    $("ts-grid").append(fig);
    $("ts-shown").textContent = T + " × " + C + " values";
  }

  function drawVectorLayout(L, s, values, sc) {
    const N = values.length;
    const width = Math.max(360, Math.min(1000, N * 8 + 80)), height = 190, pad = 28, left = 56;
    const cv = document.createElement("canvas");
    cv.width = width; cv.height = height;
    cv.dataset.channel = "all";
    const ctx = cv.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, width, height);
    let lo = sc.lo, hi = sc.hi;
    if (VIEWS[state.view].kind === "value" && s.flt && state.view !== "float") {
      for (const v of s.flt) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!(hi > lo)) hi = lo + 1;
    const X = (i) => left + ((i + 0.5) / N) * (width - left - pad);
    const Y = (v) => height - pad - ((v - lo) / (hi - lo)) * (height - 2 * pad);
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
    const zero = Y(Math.min(hi, Math.max(lo, 0)));
    ctx.beginPath(); ctx.moveTo(left, zero); ctx.lineTo(width - pad, zero); ctx.stroke();
    const bw = Math.max(1, (width - left - pad) / N - 1);
    for (let i = 0; i < N; i++) {
      const c = colourIndex(values[i], sc) * 3;
      ctx.fillStyle = "rgb(" + sc.lut[c] + "," + sc.lut[c + 1] + "," + sc.lut[c + 2] + ")";
      const y0 = Y(Math.min(hi, Math.max(lo, 0))), y1 = Y(values[i]);
      ctx.fillRect(X(i) - bw / 2, Math.min(y0, y1), bw, Math.max(1, Math.abs(y1 - y0)));
    }
    if (VIEWS[state.view].kind === "value" && s.flt && state.view !== "float") {
      ctx.strokeStyle = "#d62728"; ctx.lineWidth = 1.5; ctx.beginPath();
      for (let i = 0; i < N; i++) { if (i) ctx.lineTo(X(i), Y(s.flt[i])); else ctx.moveTo(X(i), Y(s.flt[i])); }
      ctx.stroke();
    }
    ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
    ctx.textAlign = "right";
    ctx.fillText(fmt(hi), left - 4, Y(hi) + 4); ctx.fillText(fmt(lo), left - 4, Y(lo) + 4);
    ctx.textAlign = "left"; ctx.fillText("0", X(0) - 3, height - 8);
    ctx.textAlign = "right"; ctx.fillText(String(N - 1), X(N - 1) + 3, height - 8);
    ctx.textAlign = "center"; ctx.fillText("index", (left + width - pad) / 2, height - 8);
    ctx.textAlign = "left";
    cv.addEventListener("mousemove", (ev) => {
      const i = Math.min(N - 1, Math.max(0, Math.floor(((ev.offsetX - left) / (width - left - pad)) * N)));
      readout(L, s, i, "index " + i);
    });
    const fig = document.createElement("figure");
    fig.className = "ts-vector";
    const cap = document.createElement("figcaption");
    cap.textContent = N + " values" + (VIEWS[state.view].kind === "value" && s.flt && state.view !== "float" ? " · bars: " + VIEWS[state.view].label + ", red line: float model" : "");
    fig.append(cv, cap);
    $("ts-grid").append(fig);
    $("ts-shown").textContent = N + " values";
  }

  function drawInput() {
    const I = D.input;
    const cv = $("ts-input");
    if (!I || !cv) return;
    const s = streams(I, state.image);
    const ctx = cv.getContext("2d");
    if (I.layout === "image") { // 1 or 3 channels as they are, others: channel 0 in gray
      const [H, W, C] = I.display_shape;
      cv.width = W; cv.height = H;
      const z = Math.max(1, Math.floor(112 / Math.max(H, W)));
      cv.style.width = W * z + "px"; cv.style.height = H * z + "px";
      const img = ctx.createImageData(W, H);
      for (let p = 0; p < H * W; p++) {
        for (let k = 0; k < 3; k++) img.data[4 * p + k] = s.dev[p * C + (C === 3 ? k : 0)] + 128;
        img.data[4 * p + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    } else {
      const values = viewValues(I, s, "device");
      const sc = scaleFor(I, s, "device", values);
      const n = values.length;
      cv.width = Math.min(n, 256); cv.height = 1; cv.style.width = "224px"; cv.style.height = "24px";
      const img = ctx.createImageData(cv.width, 1);
      for (let x = 0; x < cv.width; x++) paint(img, 4 * x, values[Math.floor((x * n) / cv.width)], sc);
      ctx.putImageData(img, 0, 0);
    }
    const im = D.images[state.image];
    const or = (v) => (v === null || v === undefined ? "–" : v);
    const C = I.layout === "image" ? I.display_shape[2] : 1;
    $("ts-input-caption").textContent = "image " + im.index +
      (C !== 1 && C !== 3 ? " (channel 0 of " + C + ")" : "") + " · label " + or(im.label) +
      (im.device_prediction === null && im.float_prediction === null ? "" :
        " · float predicts " + or(im.float_prediction) +
        " · device predicts " + or(im.device_prediction));
  }

  function layerSummary(L, s) {
    const parts = ["shape " + L.shape.join("×"), "scale " + fmt(L.scale, 5), "zero point " + L.zero_point];
    if (s.tflm) {
      let nd = 0;
      for (let i = 0; i < s.dev.length; i++) if (s.dev[i] !== s.tflm[i]) nd++;
      parts.push(nd === 0 ? "device = TFLM (bit-exact)" : nd + " values differ from TFLM");
    }
    if (s.xnn) {
      let nd = 0, m = 0;
      for (let i = 0; i < s.dev.length; i++) if (s.dev[i] !== s.xnn[i]) { nd++; m = Math.max(m, Math.abs(s.xnn[i] - s.dev[i])); }
      parts.push("XNNPACK: " + nd + " differ (max " + m + " LSB)");
    }
    if (s.flt) {
      let sq = 0;
      for (let i = 0; i < s.dev.length; i++) { const d = s.flt[i] / L.scale - (s.dev[i] - L.zero_point); sq += d * d; }
      parts.push("float drift RMS " + fmt(Math.sqrt(sq / s.dev.length), 2) + " LSB");
    }
    return parts.join(" · ");
  }

  function render() {
    const L = byTensor.get(state.tensor);
    if (!available(L, state.view)) state.view = "device";
    for (const b of document.querySelectorAll("#ts-views input")) {
      b.disabled = !available(L, b.value);
      b.checked = b.value === state.view;
    }
    const s = streams(L, state.image);
    const values = viewValues(L, s, state.view);
    const sc = scaleFor(L, s, state.view, values);
    $("ts-grid").replaceChildren();
    $("ts-grid").dataset.layout = L.layout;
    $("ts-sort-controls").hidden = L.layout !== "image";
    $("ts-layer-summary").textContent = layerSummary(L, s);
    if (L.layout === "image") drawImageLayout(L, s, values, sc);
    else if (L.layout === "matrix") drawMatrixLayout(L, s, values, sc);
    else drawVectorLayout(L, s, values, sc);
    drawColourbar(sc, L, state.view);
    drawInput();
    $("ts-layer").value = String(state.tensor);
    $("ts-image").value = String(state.image);
    $("ts-readout").textContent = "hover a map for the int8 and real values at that position";
    window.tinyscopeViewer.scale = sc;
  }

  function setup() {
    const imageSel = $("ts-image");
    D.images.forEach((im, k) => {
      const o = document.createElement("option");
      o.value = String(k);
      o.textContent = "image " + im.index + " (label " + (im.label === null ? "–" : im.label) +
        (im.device_prediction === null ? "" : ", device " + im.device_prediction) + ")";
      imageSel.append(o);
    });
    const layerSel = $("ts-layer");
    for (const L of layers) {
      const o = document.createElement("option");
      o.value = String(L.tensor);
      o.textContent = layerName(L) + " · " + L.shape.join("×") +
        (L.tensor === D.marked ? "  ← most drift" : "");
      layerSel.append(o);
    }
    const views = $("ts-views");
    for (const [key, v] of Object.entries(VIEWS)) {
      const lab = document.createElement("label");
      const inp = document.createElement("input");
      inp.type = "radio"; inp.name = "ts-view"; inp.value = key;
      inp.addEventListener("change", () => { state.view = key; render(); });
      lab.append(inp, " " + v.label);
      views.append(lab);
    }
    imageSel.addEventListener("change", () => { state.image = Number(imageSel.value); render(); });
    layerSel.addEventListener("change", () => { state.tensor = Number(layerSel.value); render(); });
    const step = (d) => {
      const i = layers.findIndex((l) => l.tensor === state.tensor);
      const j = Math.min(layers.length - 1, Math.max(0, i + d));
      state.tensor = layers[j].tensor; render();
    };
    $("ts-prev").addEventListener("click", () => step(-1));
    $("ts-next").addEventListener("click", () => step(1));
    $("ts-sort").addEventListener("change", (e) => { state.sort = e.target.value; render(); });
    $("ts-topk").addEventListener("change", (e) => { state.topk = Number(e.target.value); render(); });
    for (const a of document.querySelectorAll("[data-show-layer]")) {
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        state.tensor = Number(a.dataset.showLayer);
        if (a.dataset.showView) state.view = a.dataset.showView;
        render();
        $("ts-viewer").scrollIntoView();
      });
    }
  }

  window.tinyscopeViewer = {
    state,
    render,
    colourIndex,
    select(image, tensor, view) {
      if (image !== undefined && image !== null) state.image = image;
      if (tensor !== undefined && tensor !== null) state.tensor = tensor;
      if (view) state.view = view;
      render();
    },
  };
  setup();
  render();
})();
