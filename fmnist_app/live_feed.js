// The Train page's live view, drawn by the browser from the run's own record.
//
// fmnist_app/live_feed.py mounts this (an st.components.v2 component) with the run's
// events.jsonl URL and the chart's layout (fmnist_core.live_chart.live_layout). Every
// POLL_MS it fetches the record, replays the lines added since the last fetch (as
// fmnist_core.record.Replay does) and redraws the progress bar, the numbers line, the chart
// (SVG) and the epoch table - only when something changed. No Streamlit rerun per update: a
// rerun redraws the page's elements in the browser, which shares the CPU with the training.
// When the record says the run ended, it sets the trigger "ended" (the page then reruns).

const POLL_MS = 800;
// A record that has not grown for this long (a long test pass, a pause, a training process
// gone): the page is asked to look at the job again ("check"), at most this often. So the
// page itself polls seldom, and a pause or stop from another tab still shows in seconds.
const QUIET_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 58, right: 58, top: 10, bottom: 38 };
const COLUMNS = [ // the epoch table: key, title, format (as the page's table after the run)
  ["epoch", "epoch", (v) => String(v)],
  ["train_loss", "train loss", (v) => v.toFixed(4)],
  ["train_acc", "train accuracy", (v) => (100 * v).toFixed(2) + "%"],
  ["val_loss", "test loss", (v) => v.toFixed(4)],
  ["val_acc", "test accuracy", (v) => (100 * v).toFixed(2) + "%"],
  ["seconds", "seconds", (v) => v.toFixed(1)],
];

const num = (v) => typeof v === "number" && Number.isFinite(v);
const fmtInt = (v) => Math.round(v).toLocaleString("en-US");

// The batch-loss trace of fmnist_core.record.LossTrace: buckets of `stride` batches, the
// stride doubling (neighbours merged) when `limit` points are full.
class LossTrace {
  constructor(limit) {
    this.limit = Math.max(2, limit - (limit % 2));
    this.stride = 1; this.points = []; this.sum = 0; this.count = 0;
  }
  add(x, loss) {
    this.sum += loss; this.count += 1;
    if (this.count < this.stride) return;
    this.points.push([x, this.sum / this.count]);
    this.sum = 0; this.count = 0;
    if (this.points.length >= this.limit) {
      const merged = [];
      for (let i = 0; i + 1 < this.points.length; i += 2) {
        merged.push([this.points[i + 1][0], (this.points[i][1] + this.points[i + 1][1]) / 2]);
      }
      this.points = merged; this.stride *= 2;
    }
  }
}

function smooth(values, weight) { // fmnist_core.plots.smooth
  const out = []; let avg = 0;
  values.forEach((v, i) => {
    avg = weight * avg + (1 - weight) * v;
    out.push(weight < 1 ? avg / (1 - weight ** (i + 1)) : v);
  });
  return out;
}

function thinned(n, limit) { // fmnist_core.live_chart._thinned
  const step = Math.ceil(n / limit), keep = [];
  for (let i = n - 1; i >= 0; i -= step) keep.push(i);
  return keep.reverse();
}

// What the record says so far: fmnist_core.record.Replay's fields the live view shows.
class Record {
  constructor(limit) {
    this.text = ""; this.used = 0; this.rows = []; this.trace = new LossTrace(limit);
    this.epochs = 0; this.batches = 0; this.epoch = 0; this.batch = 0; this.nTrain = 0;
    this.imagesPerS = 0; this.best = 0; this.etaS = 0; this.elapsedS = 0; this.end = null;
  }
  // Replays the complete lines after the ones used (a torn last line waits for its end).
  update(text) {
    if (text.length < this.used) return false; // not this record: the caller starts anew
    const last = text.lastIndexOf("\n") + 1;
    if (last <= this.used) return false;
    const lines = text.slice(this.used, last).split("\n");
    this.used = last;
    for (const line of lines) {
      if (!line) continue;
      let obj;
      try { obj = JSON.parse(line); } catch { continue; } // a garbled line: skipped
      this.apply(obj);
    }
    return true;
  }
  apply(o) {
    if (o.type === "started") {
      if (num(o.batches)) this.batches = o.batches;
      if (num(o.n_train)) this.nTrain = o.n_train;
    } else if (o.type === "batch" && num(o.epoch) && num(o.batch) && num(o.batches)
               && Array.isArray(o.losses)) {
      const first = o.batch - o.losses.length + 1;
      o.losses.forEach((loss, i) => {
        if (num(loss)) this.trace.add(o.epoch - 1 + (first + i) / o.batches, loss);
      });
      Object.assign(this, { epoch: o.epoch, batch: o.batch, batches: o.batches });
      if (num(o.images_per_s)) {
        this.imagesPerS = o.images_per_s; this.best = Math.max(this.best, o.images_per_s);
      }
      if (num(o.eta_s)) this.etaS = o.eta_s;
      if (num(o.elapsed_s)) this.elapsedS = o.elapsed_s;
    } else if (o.type === "epoch" && num(o.epoch)) {
      this.rows = this.rows.filter((r) => r.epoch !== o.epoch).concat([o]);
    } else if (o.type === "epochs" && num(o.epochs)) {
      this.epochs = Math.max(this.epochs, o.epochs);
    } else if (o.type === "end") {
      this.end = o;
    }
  }
}

function el(tag, cls, parent) {
  const node = tag === "svg" || parent instanceof SVGElement
    ? document.createElementNS(SVG, tag) : document.createElement(tag);
  if (cls) node.setAttribute("class", cls);
  if (parent) parent.appendChild(node);
  return node;
}

function ticks(lo, hi, count) { // "nice" ticks over [lo, hi]
  const span = hi - lo || 1, raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9; t += step) out.push(t);
  return { step, values: out };
}

class LiveView {
  constructor(root) {
    this.root = root;
    root.innerHTML = "";
    const head = el("div", "fm-progress", root);
    this.barText = el("div", "fm-bar-text", head);
    this.fill = el("div", "fm-fill", el("div", "fm-bar", head));
    this.numbers = el("div", "fm-numbers", root);
    this.busy = el("div", "fm-busy", root);
    this.legend = el("div", "fm-legend", root);
    this.svg = el("svg", "fm-chart", root);
    this.table = el("table", "fm-table", root);
    this.drawn = "";
    this.width = 0;
    new ResizeObserver(() => {
      if (this.root.clientWidth !== this.width) this.draw(true);
    }).observe(root);
  }

  configure(data, trigger) {
    const key = data.url;
    if (this.key !== key) {
      this.key = key; this.record = new Record(data.layout.trace_limit); this.ended = false;
      this.frameKey = null; // another run: its chart from scratch
    }
    this.data = data; this.trigger = trigger;
    this.draw(true);
  }

  // One polling loop at a time: a stop (the component's cleanup) followed by a start while a
  // fetch is in flight must not leave the old loop running next to the new one.
  start() {
    if (this.timer) return;
    const loop = (this.loop || 0) + 1;
    this.loop = loop;
    const tick = async () => {
      await this.poll();
      if (this.timer && this.loop === loop) this.timer = setTimeout(tick, POLL_MS);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop() { clearTimeout(this.timer); this.timer = null; this.loop = (this.loop || 0) + 1; }

  async poll() {
    const url = this.data.url;
    let text;
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) return; // not made yet: the next poll looks again
      text = await response.text();
    } catch { return; } // the server is away for a moment (or for good: the page says so)
    if (url !== this.data.url) return;
    const now = Date.now();
    if (!this.record.update(text)) {
      if (text.length < this.record.used) { // a record replaced: anew
        this.record = new Record(this.data.layout.trace_limit);
        this.record.update(text);
        this.frameKey = null;
      } else {
        const quiet = now - (this.grew || now) >= QUIET_MS;
        if (quiet && now - (this.checked || 0) >= QUIET_MS && !this.record.end) {
          this.checked = now;
          this.trigger("check", now);
        }
        return;
      }
    }
    if (this.data.paused && this.grew && !this.record.end) this.trigger("check", now); // resumed
    this.grew = now;
    this.draw(false);
    if (this.record.end && !this.ended) {
      this.ended = true;
      this.trigger("ended", this.record.end.status || "ended");
    }
  }

  epochs() { return Math.max(this.data.epochs || 0, this.record.epochs || 0, 1); }

  draw(force) {
    const r = this.record;
    if (!r) return;
    const width = this.root.clientWidth;
    this.width = width;
    const key = [r.used, width, this.data.paused, this.data.view].join("|");
    if (!force && key === this.drawn) return;
    this.drawn = key;
    this.progress(r);
    this.chart(r, width);
    this.epochTable(r);
  }

  progress(r) {
    const epochs = this.epochs(), started = r.epoch > 0 && r.batches > 0;
    const done = started ? Math.min(1, ((r.epoch - 1) * r.batches + r.batch) / (epochs * r.batches)) : 0;
    this.fill.style.width = `${(100 * done).toFixed(1)}%`;
    if (!started) {
      this.barText.textContent = this.data.preparing || "Preparing the data and the model ...";
      this.numbers.textContent = ""; this.busy.textContent = "";
      return;
    }
    this.barText.textContent = `Epoch ${r.epoch}/${epochs}: batch ${fmtInt(r.batch)}/`
      + `${fmtInt(r.batches)} - Overall: ${Math.round(100 * done)}%`;
    // The time left, testing included (fmnist_app.train_view.eta).
    const perTest = r.best ? r.rows.filter((row) => num(row.seconds))
      .map((row) => Math.max(0, row.seconds - r.nTrain / r.best)) : [];
    const testS = perTest.length ? perTest.reduce((a, b) => a + b, 0) / perTest.length : 0;
    const left = r.etaS + Math.max(0, epochs - r.rows.length) * testS;
    const note = perTest.length ? `testing included (~${testS.toFixed(1)} s per epoch)`
      : "training only until the first test is timed";
    const acc = r.rows.length ? r.rows[r.rows.length - 1].val_acc : null;
    const parts = [
      [fmtInt(r.imagesPerS), " images/s"],
      this.data.paused ? ["paused", ""] : [`${left.toFixed(0)} s`, ` left, ${note}`],
      [`${r.elapsedS.toFixed(0)} s`, " elapsed"],
      num(acc) ? ["test accuracy ", (100 * acc).toFixed(2) + "%", true] : ["test accuracy -", ""],
    ];
    this.numbers.replaceChildren(...parts.flatMap(([a, b, boldSecond], i) => {
      const strong = document.createElement("strong");
      strong.textContent = boldSecond ? b : a;
      const text = document.createTextNode(boldSecond ? a : b);
      const nodes = boldSecond ? [text, strong] : [strong, text];
      return i ? [document.createTextNode(" · "), ...nodes] : nodes;
    }));
    const busy = r.best && r.imagesPerS < this.data.busy_share * r.best;
    this.busy.textContent = busy ? `The machine is busy: ${fmtInt(r.imagesPerS)} images/s, `
      + `the run's best is ${fmtInt(r.best)}.` : "";
  }

  // Each line's points: given (compared runs) or from the record (live lines).
  lines(r) {
    const out = [];
    for (const line of this.data.layout.lines) {
      let xs = line.x, ys = line.y;
      if (line.source === "losses") {
        const pts = r.trace.points;
        const values = pts.map(([, v]) => v * line.scale);
        const smoothed = line.smoothing ? smooth(values, line.smoothing) : values;
        const keep = line.smoothing ? thinned(pts.length, this.data.layout.loss_points)
          : pts.map((_, i) => i);
        xs = keep.map((i) => pts[i][0]); ys = keep.map((i) => smoothed[i]);
      } else if (line.source) {
        const rows = r.rows.filter((row) => num(row[line.source]));
        xs = rows.map((row) => row.epoch); ys = rows.map((row) => row[line.source]);
      }
      out.push({ ...line, xs, ys });
    }
    return out;
  }

  // The chart, changed in place: the axes (ticks, grid, titles) are built again only when a
  // scale or the width changes; otherwise an update sets the lines' paths and adds the new
  // epoch's points (each rebuilt element costs the browser style, layout and paint).
  chart(r, width) {
    const height = this.data.layout.height, lines = this.lines(r);
    const w = Math.max(10, width - PAD.left - PAD.right), h = height - PAD.top - PAD.bottom;
    const lastX = Math.ceil(Math.max(this.epochs(), ...lines.flatMap((l) => l.xs)));
    const x = (v) => PAD.left + (w * v) / (lastX + 0.1);
    const scales = {};
    for (const axis of ["left", "right"]) {
      const values = lines.filter((l) => l.axis === axis).flatMap((l) => l.ys);
      let lo = 0, hi = values.length ? Math.max(...values) : 1;
      if (axis === "right") { // zoomed on the data, up to 100% (as the chart after the run)
        lo = values.length ? Math.min(...values) : 0; hi = Math.min(1, Math.max(hi, lo + 0.01));
        const t = ticks(lo, hi, 5); lo = Math.floor(lo / t.step) * t.step;
        hi = Math.min(1, Math.ceil(hi / t.step - 1e-9) * t.step);
      } else {
        hi = hi > 0 ? hi : 1;
        hi = Math.ceil(hi / ticks(0, hi, 5).step - 1e-9) * ticks(0, hi, 5).step;
      }
      if (hi <= lo) hi = lo + 1;
      scales[axis] = { lo, hi, y: (v) => PAD.top + h * (1 - (v - lo) / (hi - lo)) };
    }
    const names = lines.map((l) => l.name).join("|");
    const frameKey = [width, height, lastX, scales.left.lo, scales.left.hi, scales.right.lo,
      scales.right.hi, names, this.data.view].join("|");
    if (frameKey !== this.frameKey) {
      this.frameKey = frameKey;
      this.axes(width, height, w, h, lastX, x, scales);
      this.plot = el("g", "fm-plot", this.svg);
      this.paths = new Map(); this.dots = new Map();
    }
    for (const line of lines) {
      const y = scales[line.axis].y;
      let path = this.paths.get(line.name);
      if (!path) {
        path = el("path", "fm-line", this.plot);
        path.dataset.series = line.name;
        path.setAttribute("stroke", line.colour); path.setAttribute("fill", "none");
        path.setAttribute("stroke-width", line.width);
        path.setAttribute("stroke-opacity", line.opacity);
        if (line.dash[1]) path.setAttribute("stroke-dasharray", line.dash.join(" "));
        this.paths.set(line.name, path);
      }
      const d = line.xs.map((v, i) => `${i ? "L" : "M"}${x(v).toFixed(1)},`
        + `${Math.max(PAD.top, Math.min(PAD.top + h, y(line.ys[i]))).toFixed(1)}`).join("");
      if (path.getAttribute("d") !== d) path.setAttribute("d", d);
      if (!line.points) continue;
      let dots = this.dots.get(line.name);
      if (!dots) {
        dots = el("g", "fm-points", this.plot);
        dots.dataset.series = line.name;
        this.dots.set(line.name, dots);
      }
      for (let i = dots.childElementCount; i < line.xs.length; i += 1) { // the new epochs'
        const v = line.xs[i], dot = el("circle", "", dots);
        dot.setAttribute("cx", x(v)); dot.setAttribute("cy", y(line.ys[i]));
        dot.setAttribute("r", 4); dot.setAttribute("fill", line.colour);
        const value = line.axis === "right" ? `${(100 * line.ys[i]).toFixed(2)}%`
          : line.ys[i].toFixed(4);
        el("title", "", dot).textContent = `${line.name}, epoch ${v}: ${value}`;
      }
    }
    if (names !== this.legendNames) {
      this.legendNames = names;
      this.legend.replaceChildren(...lines.map((line) => {
        const item = el("span", "fm-key");
        const swatch = el("span", "fm-swatch", item);
        swatch.style.borderTop = `${Math.max(2, line.width)}px ${line.dash[1] ? "dotted" : "solid"} ${line.colour}`;
        swatch.style.opacity = Math.max(0.5, line.opacity);
        item.appendChild(document.createTextNode(line.name));
        return item;
      }));
    }
  }

  // The SVG anew: its size, both y axes (ticks, grid, titles) and the epoch axis.
  axes(width, height, w, h, lastX, x, scales) {
    const svg = this.svg;
    svg.setAttribute("width", width); svg.setAttribute("height", height);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const [leftTitle, leftColour] = this.data.layout.axes.left;
    const [rightTitle, rightColour] = this.data.layout.axes.right;
    const axes = el("g", "fm-axes", svg);
    for (const [axis, colour, anchor, at] of [["left", leftColour, "end", PAD.left - 6],
      ["right", rightColour, "start", PAD.left + w + 6]]) {
      const s = scales[axis], t = ticks(s.lo, s.hi, 5);
      for (const v of t.values) {
        const y = s.y(v);
        if (axis === "left") {
          const grid = el("line", "fm-grid", axes);
          grid.setAttribute("x1", PAD.left); grid.setAttribute("x2", PAD.left + w);
          grid.setAttribute("y1", y); grid.setAttribute("y2", y);
        }
        const label = el("text", "fm-tick", axes);
        label.setAttribute("x", at); label.setAttribute("y", y + 4);
        label.setAttribute("text-anchor", anchor); label.style.fill = colour;
        label.textContent = axis === "right" ? `${Math.round(v * 100)}%` : +v.toFixed(3);
      }
      const title = el("text", "fm-axis-title", axes);
      const tx = axis === "left" ? 14 : width - 8, ty = PAD.top + h / 2;
      title.setAttribute("transform", `translate(${tx},${ty}) rotate(-90)`);
      title.setAttribute("text-anchor", "middle"); title.style.fill = colour;
      title.textContent = axis === "left" ? leftTitle : rightTitle;
    }
    const frame = el("line", "fm-axis-line", axes);
    frame.setAttribute("x1", PAD.left); frame.setAttribute("x2", PAD.left + w);
    frame.setAttribute("y1", PAD.top + h); frame.setAttribute("y2", PAD.top + h);
    for (let e = 0; e <= lastX; e += Math.max(1, Math.ceil(lastX / 15))) {
      const label = el("text", "fm-tick", axes);
      label.setAttribute("x", x(e)); label.setAttribute("y", PAD.top + h + 16);
      label.setAttribute("text-anchor", "middle"); label.textContent = String(e);
    }
    const xTitle = el("text", "fm-axis-title", axes);
    xTitle.setAttribute("x", PAD.left + w / 2); xTitle.setAttribute("y", height - 4);
    xTitle.setAttribute("text-anchor", "middle"); xTitle.textContent = "epoch";
  }

  epochTable(r) {
    if (r.rows.length === this.tableRows) return;
    this.tableRows = r.rows.length;
    if (!r.rows.length) { this.table.replaceChildren(); return; }
    const head = el("tr");
    COLUMNS.forEach(([, title]) => { el("th", "", head).textContent = title; });
    const body = r.rows.map((row) => {
      const tr = el("tr");
      COLUMNS.forEach(([key, , format]) => {
        el("td", "", tr).textContent = num(row[key]) ? format(row[key]) : "-";
      });
      return tr;
    });
    this.table.replaceChildren(head, ...body);
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".fm-live");
  if (!root) root = el("div", "fm-live", parentElement);
  const view = root.__view || (root.__view = new LiveView(root));
  view.configure(data, setTriggerValue);
  view.start();
  return () => view.stop();
}
