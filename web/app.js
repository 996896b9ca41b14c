// StrDiffusion web app: open an image, paint the hole, run the sampler and watch it: in this
// browser (strdiffusion.js, a Web Worker on onnxruntime-web) or on the server of `strdiffusion
// serve`. Plain browser JavaScript, no dependencies; talks only to the host it was loaded from.

const $ = (id) => document.getElementById(id);
const els = {
  fileImage: $('file-image'), fileMask: $('file-mask'),
  brush: $('tool-brush'), eraser: $('tool-eraser'), size: $('brush-size'), sizeValue: $('brush-size-value'),
  undo: $('undo'), redo: $('redo'), clear: $('clear'), downloadMask: $('download-mask'),
  seed: $('seed'), seedRandom: $('seed-random'), sampler: $('sampler'), solver: $('solver'), spacing: $('spacing'), steps: $('steps'), stepsValue: $('steps-value'), T: $('diffusion-T'),
  run: $('run'), cancel: $('cancel'),
  stage: $('stage'), empty: $('empty'), box: $('canvas-box'), imageCanvas: $('image-canvas'), maskCanvas: $('mask-canvas'),
  cursor: $('cursor'), dropHint: $('drop-hint'),
  progress: $('progress'), status: $('status'),
  previewTexture: $('preview-texture'), previewStructure: $('preview-structure'), previewT: $('preview-t'),
  toggle: $('toggle'), downloadResult: $('download-result'), adopt: $('adopt'),
  beforeCanvas: $('before-canvas'), compareLine: $('compare-line'), compare: $('compare'), holdOriginal: $('hold-original'),
  zoomIn: $('zoom-in'), zoomOut: $('zoom-out'), zoomFit: $('zoom-fit'), zoomValue: $('zoom-value'),
  runOn: $('run-on'), deviceNote: $('device-note'),
};

const ACCEPTED = ['image/png', 'image/jpeg', 'image/webp'];
const MASK_COLOUR = 'rgb(255, 48, 48)';

const state = {
  file: null,          // the original upload, sent as-is so known pixels stay bit-exact
  name: 'image',
  original: null,      // HTMLImageElement
  resultImage: null,
  resultUrl: null,
  showingResult: false,
  W: 0, H: 0,
  scale: 1,            // screen px per image px (fit scale × zoom)
  fitScale: 1, zoom: 1, panX: 0, panY: 0,
  holding: false,      // hold-to-see-original
  pan: null,           // { x, y, panX, panY } while dragging the view
  touches: new Map(),  // active touch pointers: id -> [clientX, clientY]
  pinch: null,         // { d, mid, zoom, panX, panY } while two fingers are down
  tool: 'brush',
  ops: [], redo: [],   // mask history as replayable operations (snapshots would cost W*H*4 each)
  stroke: null,
  job: null,           // { id, source: EventSource }
  kbCursor: null,      // keyboard painting position (image pixels)
  spaceDown: false,
};

const maskCtx = els.maskCanvas.getContext('2d');
const imageCtx = els.imageCanvas.getContext('2d');
const beforeCtx = els.beforeCanvas.getContext('2d');

// ---------- status ----------

function setStatus(text, isError = false) {
  els.status.textContent = text;
  els.status.classList.toggle('error', isError);
}

// ---------- opening images ----------

function loadImageElement(blob) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('the file could not be decoded as an image')); };
    img.src = url;
  });
}

async function openImage(file) {
  if (!file) return;
  if (!ACCEPTED.includes(file.type)) {
    setStatus(`${file.name} is not a PNG, JPEG or WebP image.`, true);
    return;
  }
  if (state.job) { setStatus('Wait for the running job to finish (or cancel it) before opening another image.', true); return; }
  let img;
  try {
    img = await loadImageElement(file);
  } catch (e) {
    setStatus(`${file.name}: ${e.message}.`, true);
    return;
  }
  state.file = file;
  state.name = file.name.replace(/\.[^.]+$/, '') || 'image';
  state.original = img;
  state.W = img.naturalWidth;
  state.H = img.naturalHeight;
  state.ops = [];
  state.redo = [];
  state.kbCursor = null;
  clearResult();
  for (const c of [els.imageCanvas, els.beforeCanvas]) { c.width = state.W; c.height = state.H; }
  beforeCtx.drawImage(img, 0, 0, state.W, state.H);
  drawBase();
  renderMask();
  els.empty.hidden = true;
  els.box.hidden = false;
  fit();
  updateButtons();
  setStatus(`${file.name}: ${state.W} × ${state.H}. Paint the region to fill.`);
  els.maskCanvas.focus({ preventScroll: true });
}

function drawBase() {
  const after = state.showingResult && state.resultImage && !state.holding;
  const img = after ? state.resultImage : state.original;
  imageCtx.clearRect(0, 0, state.W, state.H);
  if (img) imageCtx.drawImage(img, 0, 0, state.W, state.H);
  els.box.classList.toggle('result', !!after);
  updateCompare();
}

/** The compare slider: the original over the left part of the result (0 = all result). */
function updateCompare() {
  const on = state.showingResult && !!state.resultImage && !state.holding && Number(els.compare.value) > 0;
  els.beforeCanvas.hidden = !on;
  els.compareLine.hidden = !on;
  if (!on) return;
  const f = Number(els.compare.value) / 100;
  els.beforeCanvas.style.clipPath = `inset(0 ${((1 - f) * 100).toFixed(2)}% 0 0)`;
  els.compareLine.style.left = `${(f * 100).toFixed(2)}%`;
}

const MIN_ZOOM = 0.25, MAX_ZOOM = 32;

/** Lay the canvases out for the current fit scale, zoom and pan. */
function layout() {
  state.scale = state.fitScale * state.zoom;
  const w = Math.max(1, Math.round(state.W * state.scale));
  const h = Math.max(1, Math.round(state.H * state.scale));
  for (const c of [els.imageCanvas, els.beforeCanvas, els.maskCanvas]) { c.style.width = `${w}px`; c.style.height = `${h}px`; }
  els.box.style.transform = `translate(${Math.round(state.panX)}px, ${Math.round(state.panY)}px)`;
  // smoothing blurs single pixels only at strong magnification
  els.box.classList.toggle('pixelated', state.scale >= 4);
  els.zoomValue.textContent = `${Math.round(state.scale * 100)}%`;
  if (!state.stroke) resizeMaskBacking();
  updateCursorSize();
}

/** The whole image, centred (zoom 1). */
function fit() {
  if (!state.original) return;
  const r = els.stage.getBoundingClientRect();
  const pad = 16;
  state.fitScale = Math.min((r.width - pad) / state.W, (r.height - pad) / state.H);
  if (!(state.fitScale > 0)) state.fitScale = 1;
  state.zoom = 1;
  state.panX = (r.width - state.W * state.fitScale) / 2;
  state.panY = (r.height - state.H * state.fitScale) / 2;
  layout();
}

/** Zoom by `factor` keeping the image point under (clientX, clientY) in place (default: the stage's centre). */
function zoomAt(factor, clientX, clientY) {
  if (!state.original) return;
  const r = els.stage.getBoundingClientRect();
  const cx = (clientX ?? r.left + r.width / 2) - r.left;
  const cy = (clientY ?? r.top + r.height / 2) - r.top;
  const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, state.zoom * factor));
  const k = zoom / state.zoom;
  state.panX = cx - (cx - state.panX) * k;
  state.panY = cy - (cy - state.panY) * k;
  state.zoom = zoom;
  layout();
}

new ResizeObserver(() => {
  // keep the user's zoom; only a view at fit follows the stage's size
  if (state.zoom === 1) fit();
}).observe(els.stage);

// ---------- mask history ----------

function brushImagePx() {
  return Math.max(1, Number(els.size.value) / state.scale);
}

/**
 * The mask canvas on screen holds the painting at about screen resolution (state.maskK image px
 * per backing px, at most 1 and at most MAX_MASK_PIXELS in all), so strokes on a large photo touch
 * few pixels; the history is kept in image coordinates and replayed at full resolution only for
 * the mask that is sent or downloaded (maskCanvasBinary).
 */
const MAX_MASK_PIXELS = 4e6;
state.maskK = 1;

/** The backing scale for the current view: a power of two, so zooming rarely re-renders. */
function maskScaleFor() {
  const want = Math.min(1, state.scale * (window.devicePixelRatio || 1), Math.sqrt(MAX_MASK_PIXELS / Math.max(1, state.W * state.H)));
  return Math.min(1, 2 ** Math.ceil(Math.log2(Math.max(want, 1 / 64))));
}

function resizeMaskBacking(force = false) {
  const k = maskScaleFor();
  if (!force && k === state.maskK && els.maskCanvas.width === Math.max(1, Math.round(state.W * k))) return;
  state.maskK = k;
  els.maskCanvas.width = Math.max(1, Math.round(state.W * k));
  els.maskCanvas.height = Math.max(1, Math.round(state.H * k));
  renderMask();
}

function drawOp(op, ctx = maskCtx, k = state.maskK) {
  ctx.setTransform(k, 0, 0, k, 0, 0);
  if (op.type === 'clear') { ctx.clearRect(0, 0, state.W, state.H); return; }
  if (op.type === 'image') {
    ctx.clearRect(0, 0, state.W, state.H);
    ctx.drawImage(op.canvas, 0, 0);
    return;
  }
  ctx.save();
  ctx.globalCompositeOperation = op.mode === 'eraser' ? 'destination-out' : 'source-over';
  ctx.strokeStyle = ctx.fillStyle = MASK_COLOUR;
  ctx.lineWidth = op.width;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  const p = op.points;
  if (p.length === 1) {
    ctx.beginPath();
    ctx.arc(p[0][0], p[0][1], op.width / 2, 0, Math.PI * 2);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.moveTo(p[0][0], p[0][1]);
    for (let i = 1; i < p.length; i++) ctx.lineTo(p[i][0], p[i][1]);
    ctx.stroke();
  }
  ctx.restore();
}

function renderMask() {
  maskCtx.setTransform(1, 0, 0, 1, 0, 0);
  maskCtx.clearRect(0, 0, els.maskCanvas.width, els.maskCanvas.height);
  for (const op of state.ops) drawOp(op);
  if (state.stroke) drawOp(state.stroke);
}

function pushOp(op) {
  state.ops.push(op);
  state.redo = [];
  showBefore();
  updateButtons();
}

function undo() {
  if (!state.ops.length) return;
  state.redo.push(state.ops.pop());
  renderMask();
  showBefore();
  updateButtons();
}

function redo() {
  if (!state.redo.length) return;
  state.ops.push(state.redo.pop());
  renderMask();
  showBefore();
  updateButtons();
}

function clearMask() {
  if (!hasMask()) return;
  pushOp({ type: 'clear' });
  renderMask();
}

/** whether the current history leaves anything painted (cheap: ops after the last clear) */
function hasMask() {
  for (let i = state.ops.length - 1; i >= 0; i--) {
    const op = state.ops[i];
    if (op.type === 'clear') return false;
    if (op.type === 'image' || op.mode === 'brush') return true;
  }
  return false;
}

// ---------- painting ----------

function toImage(ev) {
  const r = els.maskCanvas.getBoundingClientRect();
  return [((ev.clientX - r.left) * state.W) / r.width, ((ev.clientY - r.top) * state.H) / r.height];
}

function beginStroke(pt) {
  state.stroke = { type: 'stroke', mode: state.tool, width: brushImagePx(), points: [pt] };
  showBefore();
  renderMask();
}

function extendStroke(pt) {
  if (!state.stroke) return;
  const last = state.stroke.points[state.stroke.points.length - 1];
  if (Math.hypot(pt[0] - last[0], pt[1] - last[1]) < 0.5) return;
  state.stroke.points.push(pt);
  // redraw only the newest segment; the full replay happens on undo
  drawOp({ ...state.stroke, points: [last, pt] });
}

function endStroke() {
  if (!state.stroke) return;
  const s = state.stroke;
  state.stroke = null;
  pushOp(s);
  renderMask();
}

// Pointers on the canvas: one finger, the pen or the left button paints; Space + drag or the
// middle button pans; a second finger turns the gesture into pinch-zoom + pan (the stroke the
// first finger began is dropped, as in other editors).
els.maskCanvas.addEventListener('pointerdown', (ev) => {
  if (!state.original) return;
  if (ev.pointerType === 'touch') {
    state.touches.set(ev.pointerId, [ev.clientX, ev.clientY]);
    if (state.touches.size === 2) {
      state.stroke = null;
      renderMask();
      startPinch();
      els.maskCanvas.setPointerCapture(ev.pointerId);
      ev.preventDefault();
      return;
    }
    if (state.touches.size > 2) return;
  }
  const panning = ev.button === 1 || (ev.button === 0 && state.spaceDown);
  if (ev.button !== 0 && !panning) return;
  els.maskCanvas.setPointerCapture(ev.pointerId);
  els.maskCanvas.focus({ preventScroll: true });
  ev.preventDefault();
  if (panning) {
    // Space held for panning paints nothing: drop a keyboard stroke it may have begun
    if (state.stroke && state.stroke.points.length <= 1) { state.stroke = null; renderMask(); }
    state.pan = { x: ev.clientX, y: ev.clientY, panX: state.panX, panY: state.panY };
    els.stage.classList.add('panning');
    return;
  }
  beginStroke(toImage(ev));
});
els.maskCanvas.addEventListener('pointermove', (ev) => {
  moveCursor(ev.clientX, ev.clientY);
  if (ev.pointerType === 'touch' && state.touches.has(ev.pointerId)) {
    state.touches.set(ev.pointerId, [ev.clientX, ev.clientY]);
    if (state.pinch) { movePinch(); return; }
  }
  if (state.pan) {
    state.panX = state.pan.panX + ev.clientX - state.pan.x;
    state.panY = state.pan.panY + ev.clientY - state.pan.y;
    layout();
    return;
  }
  if (!state.stroke || !els.maskCanvas.hasPointerCapture(ev.pointerId)) return;
  const events = typeof ev.getCoalescedEvents === 'function' ? ev.getCoalescedEvents() : [ev];
  for (const e of events.length ? events : [ev]) extendStroke(toImage(e));
});
for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
  els.maskCanvas.addEventListener(type, (ev) => {
    if (ev.pointerType === 'touch') {
      state.touches.delete(ev.pointerId);
      if (state.pinch) {
        if (state.touches.size < 2) state.pinch = null;
        return;
      }
    }
    if (state.pan) {
      state.pan = null;
      els.stage.classList.remove('panning');
      return;
    }
    endStroke();
  });
}

function pinchGeometry() {
  const [a, b] = [...state.touches.values()];
  return { d: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1, mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
}

function startPinch() {
  const g = pinchGeometry();
  state.pinch = { ...g, zoom: state.zoom, panX: state.panX, panY: state.panY };
}

function movePinch() {
  const p = state.pinch;
  const g = pinchGeometry();
  const r = els.stage.getBoundingClientRect();
  const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, p.zoom * (g.d / p.d)));
  const k = zoom / p.zoom;
  // the image point under the first midpoint follows the fingers' midpoint
  const mx = p.mid[0] - r.left, my = p.mid[1] - r.top;
  state.panX = g.mid[0] - r.left - (mx - p.panX) * k;
  state.panY = g.mid[1] - r.top - (my - p.panY) * k;
  state.zoom = zoom;
  layout();
}

els.stage.addEventListener('wheel', (ev) => {
  if (!state.original) return;
  ev.preventDefault();
  // trackpad pinch arrives as ctrl+wheel with small deltas; a mouse notch is ~100
  const dy = ev.deltaMode === 1 ? ev.deltaY * 33 : ev.deltaY;
  zoomAt(Math.exp(-dy * (ev.ctrlKey ? 0.01 : 0.0015)), ev.clientX, ev.clientY);
}, { passive: false });
els.maskCanvas.addEventListener('pointerenter', () => { els.cursor.hidden = false; });
els.maskCanvas.addEventListener('pointerleave', () => { if (!state.kbCursor) els.cursor.hidden = true; });

function moveCursor(clientX, clientY) {
  const r = els.box.getBoundingClientRect();
  els.cursor.style.left = `${clientX - r.left}px`;
  els.cursor.style.top = `${clientY - r.top}px`;
}

function updateCursorSize() {
  const d = Number(els.size.value);
  els.cursor.style.width = els.cursor.style.height = `${d}px`;
  els.cursor.classList.toggle('eraser', state.tool === 'eraser');
  els.sizeValue.textContent = String(d);
}

function setTool(tool) {
  state.tool = tool;
  els.brush.setAttribute('aria-pressed', String(tool === 'brush'));
  els.eraser.setAttribute('aria-pressed', String(tool === 'eraser'));
  updateCursorSize();
}

function changeSize(factor) {
  const v = Math.round(Number(els.size.value) * factor + (factor > 1 ? 1 : -1));
  els.size.value = String(Math.min(Number(els.size.max), Math.max(Number(els.size.min), v)));
  updateCursorSize();
}

// keyboard painting: the arrows move a brush cursor over the canvas, Space paints
function kbMove(dx, dy) {
  if (!state.original) return;
  if (!state.kbCursor) state.kbCursor = [state.W / 2, state.H / 2];
  const c = state.kbCursor;
  c[0] = Math.min(state.W, Math.max(0, c[0] + dx));
  c[1] = Math.min(state.H, Math.max(0, c[1] + dy));
  const r = els.maskCanvas.getBoundingClientRect();
  els.cursor.hidden = false;
  moveCursor(r.left + (c[0] / state.W) * r.width, r.top + (c[1] / state.H) * r.height);
  if (state.spaceDown && !state.pan) {
    // the stroke starts with the first move, so Space held for panning paints nothing
    if (!state.stroke) beginStroke([c[0] - dx, c[1] - dy]);
    extendStroke([c[0], c[1]]);
  }
}

els.maskCanvas.addEventListener('keydown', (ev) => {
  if (!state.original || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const step = (ev.shiftKey ? 10 : 2) * Number(els.size.value) / 4 / state.scale;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[ev.key]) {
    kbMove(...moves[ev.key]);
    ev.preventDefault();
  } else if (ev.key === ' ') {
    ev.preventDefault();
    if (ev.repeat || state.spaceDown) return;
    state.spaceDown = true;
    els.stage.classList.add('pan-ready');
  }
});
els.maskCanvas.addEventListener('keyup', (ev) => {
  if (ev.key === ' ' && state.spaceDown) {
    ev.preventDefault();
    state.spaceDown = false;
    els.stage.classList.remove('pan-ready');
    if (!state.pan) endStroke();
  }
});
els.maskCanvas.addEventListener('blur', () => {
  if (state.spaceDown) { state.spaceDown = false; els.stage.classList.remove('pan-ready'); endStroke(); }
  if (state.kbCursor) { state.kbCursor = null; els.cursor.hidden = true; }
});

// ---------- mask files ----------

/** The painted mask at the image's resolution: white = hole, black = known, no grey edges. */
function maskCanvasBinary() {
  const c = document.createElement('canvas');
  c.width = state.W;
  c.height = state.H;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  // the history replayed at the image's resolution (the screen's canvas may hold less)
  for (const op of state.ops) drawOp(op, ctx, 1);
  const d = ctx.getImageData(0, 0, state.W, state.H);
  const p = d.data;
  for (let i = 0; i < p.length; i += 4) {
    const v = p[i + 3] >= 128 ? 255 : 0;
    p[i] = p[i + 1] = p[i + 2] = v;
    p[i + 3] = 255;
  }
  ctx.putImageData(d, 0, 0);
  return c;
}

function canvasBlob(c) {
  return new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('could not encode the mask'))), 'image/png'));
}

function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function uploadMask(file) {
  if (!file || !state.original) return;
  if (!ACCEPTED.includes(file.type)) { setStatus(`${file.name} is not a PNG, JPEG or WebP image.`, true); return; }
  let img;
  try {
    img = await loadImageElement(file);
  } catch (e) {
    setStatus(`${file.name}: ${e.message}.`, true);
    return;
  }
  const resized = img.naturalWidth !== state.W || img.naturalHeight !== state.H;
  const c = document.createElement('canvas');
  c.width = state.W;
  c.height = state.H;
  const ctx = c.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, state.W, state.H);
  const d = ctx.getImageData(0, 0, state.W, state.H);
  const p = d.data;
  // the server's rule (src/inpaint/mask.ts): white (luma >= half; a 0/1 mask: non-zero) = hole, or,
  // when the mask has alpha that is not opaque everywhere, opaque = hole whatever the colour;
  // painted in the overlay colour
  let readsAlpha = false;
  for (let i = 3; i < p.length && !readsAlpha; i += 4) readsAlpha = p[i] < 255;
  const value = (i) => (readsAlpha ? p[i + 3] : 0.299 * p[i] + 0.587 * p[i + 1] + 0.114 * p[i + 2]);
  let peak = 0;
  for (let i = 0; i < p.length; i += 4) peak = Math.max(peak, value(i));
  const threshold = peak <= 1 ? 0.5 : 127.5;
  for (let i = 0; i < p.length; i += 4) {
    const hole = value(i) >= threshold;
    p[i] = 255; p[i + 1] = 48; p[i + 2] = 48; p[i + 3] = hole ? 255 : 0;
  }
  ctx.putImageData(d, 0, 0);
  pushOp({ type: 'image', canvas: c });
  renderMask();
  setStatus(resized
    ? `Mask ${file.name} is ${img.naturalWidth} × ${img.naturalHeight}; it was scaled to the image (${state.W} × ${state.H}).`
    : `Mask ${file.name} loaded.`);
}

// ---------- result view ----------

function clearResult() {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultImage = null;
  state.resultUrl = null;
  state.showingResult = false;
  els.downloadResult.removeAttribute('href');
  els.downloadResult.classList.add('disabled');
  els.downloadResult.setAttribute('aria-disabled', 'true');
  els.box.classList.remove('result');
  els.compare.value = '0';
  updateCompare();
  updateToggle();
}

function showBefore() {
  if (state.showingResult) {
    state.showingResult = false;
    drawBase();
    updateToggle();
  }
}

function toggleResult() {
  if (!state.resultImage) return;
  state.showingResult = !state.showingResult;
  drawBase();
  updateToggle();
}

function updateToggle() {
  els.toggle.disabled = !state.resultImage;
  els.compare.disabled = !state.resultImage;
  els.holdOriginal.disabled = !state.resultImage;
  els.adopt.disabled = !state.resultImage || !!state.job;
  els.toggle.setAttribute('aria-pressed', String(state.showingResult));
  els.toggle.textContent = state.showingResult ? 'Showing: after' : 'Showing: before';
}

async function adoptResult() {
  if (!state.resultUrl) return;
  const blob = await (await fetch(state.resultUrl)).blob();
  await openImage(new File([blob], `${state.name}-inpainted.png`, { type: 'image/png' }));
}

// ---------- jobs ----------

const STAGES = { early: 'early stage (structure-guided)', late: 'late stage (texture only)', loading: 'loading the model' };

function updateButtons() {
  const busy = !!state.job;
  const ready = !!state.original;
  els.run.disabled = !ready || busy;
  els.cancel.disabled = !busy;
  els.undo.disabled = !state.ops.length;
  els.redo.disabled = !state.redo.length;
  els.clear.disabled = !hasMask();
  els.downloadMask.disabled = !ready;
  els.adopt.disabled = !state.resultImage || busy;
}

async function run() {
  if (!state.original || state.job) return;
  if (!hasMask()) { setStatus('Paint the region to fill first (or upload a mask).', true); return; }
  if (els.runOn.value === 'server') return runOnServer();
  return runOnDevice(els.runOn.value);
}

/** The result image (a PNG blob) shown in place of the input, as after a server job. */
async function showResult(blob, message) {
  const img = await loadImageElement(blob);
  clearResult();
  state.resultImage = img;
  state.resultUrl = img.src;
  state.showingResult = true;
  drawBase();
  els.downloadResult.href = img.src;
  els.downloadResult.download = `${state.name}-inpainted.png`;
  els.downloadResult.classList.remove('disabled');
  els.downloadResult.removeAttribute('aria-disabled');
  els.progress.max = 1;
  els.progress.value = 1;
  finishJob(message);
}

// ---------- running in this browser ----------

const MODEL_URL = './models/default/';
const device = { module: null, model: null, provider: null, info: null };

/** The exact pixels of the opened file (no colour conversion: the same bytes the server would decode). */
async function imageDataOf(file) {
  const bmp = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const c = document.createElement('canvas');
  c.width = bmp.width;
  c.height = bmp.height;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  return ctx.getImageData(0, 0, c.width, c.height);
}

/** The browser model for `provider`, loaded once (the weights come from the browser's cache after the first time). */
async function deviceModel(provider) {
  if (device.model && device.provider === provider) return device.model;
  if (device.model) { await device.model.dispose(); device.model = null; }
  device.module ??= await import('./strdiffusion.js');
  setStatus('Loading the model…');
  els.progress.removeAttribute('value');
  const model = await device.module.loadModel(MODEL_URL, {
    executionProviders: provider === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'],
    onDownload: (p) => {
      if (p.total > 0) { els.progress.max = p.total; els.progress.value = p.loaded; }
      const mb = (n) => (n / 2 ** 20).toFixed(1);
      setStatus(p.cached ? 'Loading the model from this browser\'s cache…' : `Downloading the model: ${mb(p.loaded)}${p.total ? ` / ${mb(p.total)}` : ''} MB (once; the browser keeps it)`);
    },
  });
  device.model = model;
  device.provider = provider;
  els.deviceNote.hidden = !model.info.note;
  els.deviceNote.textContent = model.info.note ?? '';
  return model;
}

async function runOnDevice(provider) {
  const ctrl = new AbortController();
  state.job = { device: true, ctrl, started: performance.now() };
  updateButtons();
  els.progress.value = 0;
  try {
    const model = await deviceModel(provider);
    if (ctrl.signal.aborted) throw Object.assign(new Error('cancelled'), { cancelled: true });
    const image = await imageDataOf(state.file);
    const maskCanvas = maskCanvasBinary();
    const mask = maskCanvas.getContext('2d').getImageData(0, 0, state.W, state.H);
    const options = { signal: ctrl.signal, onProgress: showProgress };
    if (els.seed.value !== '') options.seed = Number(els.seed.value);
    for (const k of ['sampler', 'solver', 'spacing']) if (els[k].value !== '') options[k] = els[k].value;
    options.steps = Number(els.steps.value);
    els.progress.removeAttribute('value');
    setStatus(`Running on this device (${model.info.provider}${model.info.provider === 'wasm' ? `, ${model.info.threads} thread${model.info.threads === 1 ? '' : 's'}` : ''})…`);
    const out = await model.inpaint(image, mask, options);
    const c = document.createElement('canvas');
    c.width = out.width;
    c.height = out.height;
    c.getContext('2d').putImageData(out, 0, 0);
    const stats = model.lastRun;
    await showResult(await canvasBlob(c), `Done in ${stats.seconds.toFixed(1)} s on this device (${model.info.provider}): ${stats.holePixels.toLocaleString()} pixels filled (${out.width} × ${out.height}).`);
  } catch (e) {
    els.progress.value = 0;
    if (e.cancelled || ctrl.signal.aborted) finishJob('Cancelled.');
    // one line: a runtime's message may carry a stack or a dump after its first line
    else finishJob(`Failed: ${String(e.message).split('\n')[0]}`, true);
  }
}

// ---------- running on the server ----------

async function runOnServer() {
  const form = new FormData();
  form.append('image', state.file, state.file.name);
  form.append('mask', await canvasBlob(maskCanvasBinary()), 'mask.png');
  if (els.seed.value !== '') form.append('seed', els.seed.value);
  // no sampler field: the server runs the model's (as the CLI does)
  if (els.sampler.value !== '') form.append('sampler', els.sampler.value);
  if (els.solver.value !== '') form.append('solver', els.solver.value);
  if (els.spacing.value !== '') form.append('spacing', els.spacing.value);
  if (els.T.value !== '') form.append('T', els.T.value);
  // the full grid needs no steps field (a T changed by hand then runs all its levels)
  if (els.steps.value !== els.steps.max) form.append('steps', els.steps.value);
  els.progress.value = 0;
  els.progress.removeAttribute('value'); // indeterminate until the first step
  setStatus('Uploading…');
  state.job = { id: null, source: null, started: performance.now() };
  updateButtons();
  let res, body;
  try {
    res = await fetch('api/jobs', { method: 'POST', body: form });
    body = await res.json();
  } catch (e) {
    finishJob(`The server could not be reached (${e.message}).`, true);
    return;
  }
  if (!res.ok) { finishJob(body.error || `The server refused the job (HTTP ${res.status}).`, true); return; }
  if (!state.job) { // cancelled while uploading
    fetch(`api/jobs/${encodeURIComponent(body.id)}`, { method: 'DELETE' });
    return;
  }
  state.job.id = body.id;
  const source = new EventSource(`api/jobs/${encodeURIComponent(body.id)}/events`);
  state.job.source = source;
  const data = (ev) => JSON.parse(ev.data);
  source.addEventListener('queued', (ev) => {
    const d = data(ev);
    els.progress.removeAttribute('value');
    setStatus(d.ahead > 0 ? `Queued: place ${d.position} (${d.ahead} job${d.ahead === 1 ? '' : 's'} ahead).` : 'Queued: starting next.');
  });
  source.addEventListener('progress', (ev) => showProgress(data(ev)));
  source.addEventListener('preview', (ev) => {
    const d = data(ev);
    els.previewTexture.src = d.texture;
    els.previewStructure.src = d.structure;
    els.previewT.textContent = `t = ${d.t}`;
  });
  source.addEventListener('done', async (ev) => {
    const d = data(ev);
    source.close();
    try {
      const r = await fetch(d.result);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      await showResult(await r.blob(), `Done in ${d.seconds.toFixed(1)} s: ${d.holePixels.toLocaleString()} pixels filled (${d.width} × ${d.height}).`);
    } catch (e) {
      finishJob(`The result could not be loaded (${e.message}).`, true);
    }
  });
  source.addEventListener('error', (ev) => {
    if (ev.data) { // a job error event; connection errors carry no data
      const d = data(ev);
      source.close();
      els.progress.value = 0;
      finishJob(d.cancelled ? 'Cancelled.' : `Failed: ${d.message}`, !d.cancelled);
    } else if (source.readyState === EventSource.CLOSED) {
      finishJob('Lost the connection to the server.', true);
    }
  });
}

/** A progress event (the server's, or the browser model's onProgress: the same fields). */
function showProgress(d) {
  if (d.step === 0) {
    els.progress.removeAttribute('value');
    setStatus('Starting: loading the model…');
    return;
  }
  els.progress.max = d.T;
  els.progress.value = d.step;
  const eta = d.eta != null && d.step < d.T ? ` · about ${Math.ceil(d.eta)} s left` : '';
  setStatus(`Step ${d.step} / ${d.T} · ${STAGES[d.stage] || d.stage}${eta}`);
}

function finishJob(message, isError = false) {
  if (state.job?.source) state.job.source.close();
  state.job = null;
  if (!els.progress.hasAttribute('value')) els.progress.value = 0;
  setStatus(message, isError);
  updateButtons();
  updateToggle();
}

async function cancel() {
  const job = state.job;
  if (!job) return;
  if (job.device) { setStatus('Cancelling…'); job.ctrl.abort(); return; }
  if (!job.id) { finishJob('Cancelled.'); return; }
  setStatus('Cancelling…');
  els.cancel.disabled = true;
  try {
    await fetch(`api/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
  } catch (e) {
    setStatus(`Could not cancel (${e.message}).`, true);
  }
}

/** Replace a select's options after the first `keep` with `values` (the current choice kept if still offered). */
function fillSelect(select, values, keep = 0) {
  if (!Array.isArray(values) || values.length === 0) return;
  const current = select.value;
  while (select.options.length > keep) select.remove(keep);
  for (const v of values) select.add(new Option(v, v));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

function showSteps() {
  els.stepsValue.textContent = els.steps.value;
}

/** The model's settings in the controls: T, steps, and the defaults named in the selects. */
function applyDefaults(info) {
  els.T.value = String(info.T);
  els.steps.max = String(info.T);
  els.steps.value = String(info.steps ?? info.T);
  showSteps();
  for (const k of ['sampler', 'solver', 'spacing']) els[k].options[0].textContent = info[k] ? `model default (${info[k]})` : 'model default';
  els.T.readOnly = !!info.fixedT;
  els.T.title = info.fixedT ? `This model was trained with T = ${info.T}` : 'Diffusion length T (fixed by most models)';
}

const infos = { server: null, device: null };

/** What can run where: the server's /api/info (absent on a static host) and the browser build
 * (strdiffusion.js and the bundled model beside the page; absent when `serve` has no build). */
async function loadInfo() {
  const [server, device] = await Promise.all([
    fetch('api/info').then((r) => (r.ok ? r.json() : null)).catch(() => null),
    fetch('strdiffusion.js', { method: 'HEAD' })
      .then((r) => (r.ok ? fetch(`${MODEL_URL}model.json`) : null))
      .then((r) => (r && r.ok ? r.json() : null))
      .catch(() => null),
  ]);
  infos.server = server;
  infos.device = device && { ...device, fixedT: true };
  for (const o of [...els.runOn.options]) if (o.value === 'server' ? !server : !device) o.remove();
  if (els.runOn.options.length === 0) {
    setStatus('Neither a server nor the browser build answers: serve the folder of `npm run build:web`, or run `strdiffusion serve`.', true);
    return;
  }
  // a static host: the browser is the only place to run, and says so
  els.runOn.value = server ? 'server' : els.runOn.options[0].value;
  applyRunOn();
  if (server) loadServerInfo(server);
}

function applyRunOn() {
  const info = els.runOn.value === 'server' ? infos.server : infos.device;
  if (info) applyDefaults(info);
  // the server streams the denoising states; the browser build shows the progress only
  $('live').hidden = els.runOn.value !== 'server';
  els.deviceNote.hidden = els.runOn.value === 'server' || !device.model?.info.note || device.provider !== els.runOn.value;
}

function loadServerInfo(info) {
  try {
    // the choices come from the server (defined once there); the page's own list is only the fallback
    fillSelect(els.sampler, info.samplers, 1);
    fillSelect(els.solver, info.solvers, 1);
    fillSelect(els.spacing, info.spacings, 1);
    applyDefaults(info);
  } catch {
    // the defaults in the page still work
  }
}

// ---------- wiring ----------

els.steps.addEventListener('input', showSteps);
els.T.addEventListener('change', () => {
  // the slider covers 1..T; a new T starts on its full grid
  if (Number(els.T.value) >= 2) { els.steps.max = els.T.value; els.steps.value = els.T.value; showSteps(); }
});

els.fileImage.addEventListener('change', () => { openImage(els.fileImage.files[0]); els.fileImage.value = ''; });
els.fileMask.addEventListener('change', () => { uploadMask(els.fileMask.files[0]); els.fileMask.value = ''; });
els.brush.addEventListener('click', () => setTool('brush'));
els.eraser.addEventListener('click', () => setTool('eraser'));
els.size.addEventListener('input', updateCursorSize);
els.undo.addEventListener('click', undo);
els.redo.addEventListener('click', redo);
els.clear.addEventListener('click', clearMask);
els.downloadMask.addEventListener('click', async () => download(await canvasBlob(maskCanvasBinary()), `${state.name}-mask.png`));
els.seedRandom.addEventListener('click', () => { els.seed.value = String(Math.floor(Math.random() * 2 ** 31)); });
els.run.addEventListener('click', run);
els.cancel.addEventListener('click', cancel);
els.toggle.addEventListener('click', toggleResult);
els.compare.addEventListener('input', updateCompare);
els.runOn.addEventListener('change', applyRunOn);
els.zoomIn.addEventListener('click', () => zoomAt(1.25));
els.zoomOut.addEventListener('click', () => zoomAt(1 / 1.25));
els.zoomFit.addEventListener('click', fit);
/** Hold-to-see-original (button or the O key): the input while held, the result again on release. */
function hold(on) {
  if (!state.resultImage || state.holding === on) return;
  state.holding = on;
  els.holdOriginal.setAttribute('aria-pressed', String(on));
  drawBase();
}
els.holdOriginal.addEventListener('pointerdown', (ev) => { ev.preventDefault(); hold(true); });
for (const type of ['pointerup', 'pointerleave', 'pointercancel']) els.holdOriginal.addEventListener(type, () => hold(false));
els.holdOriginal.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); hold(true); } });
els.holdOriginal.addEventListener('keyup', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') hold(false); });
document.addEventListener('keyup', (ev) => { if (ev.key.toLowerCase() === 'o') hold(false); });
els.adopt.addEventListener('click', adoptResult);
// the label-styled "buttons" open their file pickers from the keyboard too
for (const [label, input] of [[document.querySelector('label[for="file-image"]'), els.fileImage], [document.querySelector('label[for="file-mask"]'), els.fileMask]]) {
  label.tabIndex = 0;
  input.tabIndex = -1;
  label.setAttribute('role', 'button');
  label.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); input.click(); }
  });
}

// Space held while the pointer is over the image pans on drag, wherever the focus is (a focused
// button would otherwise take the Space as a click); the mask canvas's own handler comes first
let lastPointer = null;
document.addEventListener('pointermove', (ev) => { lastPointer = [ev.clientX, ev.clientY]; }, { passive: true });
function pointerOverStage() {
  if (!lastPointer) return false;
  const r = els.stage.getBoundingClientRect();
  return lastPointer[0] >= r.left && lastPointer[0] < r.right && lastPointer[1] >= r.top && lastPointer[1] < r.bottom;
}
document.addEventListener('keydown', (ev) => {
  if (ev.key !== ' ' || ev.defaultPrevented || !state.original || !pointerOverStage()) return;
  const t = ev.target;
  if (t instanceof HTMLInputElement && t.type !== 'range' || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
  ev.preventDefault();
  state.spaceDown = true;
  els.stage.classList.add('pan-ready');
});
document.addEventListener('keyup', (ev) => {
  if (ev.key !== ' ' || !state.spaceDown || ev.defaultPrevented) return;
  ev.preventDefault();
  state.spaceDown = false;
  els.stage.classList.remove('pan-ready');
  if (!state.pan) endStroke();
});

document.addEventListener('keydown', (ev) => {
  const t = ev.target;
  const typing = t instanceof HTMLInputElement && t.type !== 'range' && t.type !== 'file' || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
  const mod = ev.ctrlKey || ev.metaKey;
  if (mod && ev.key === 'Enter') { ev.preventDefault(); run(); return; }
  if (ev.key === 'Escape' && state.job) { ev.preventDefault(); cancel(); return; }
  if (typing) return;
  const key = ev.key.toLowerCase();
  if (mod && key === 'z') { ev.preventDefault(); ev.shiftKey ? redo() : undo(); return; }
  if (mod && key === 'y') { ev.preventDefault(); redo(); return; }
  if (mod || ev.altKey) return;
  if (ev.key === '[') changeSize(1 / 1.2);
  else if (ev.key === ']') changeSize(1.2);
  else if (key === 'b') setTool('brush');
  else if (key === 'e') setTool('eraser');
  else if (key === 't') toggleResult();
  else if (key === 'o') { if (!ev.repeat) hold(true); }
  else if (ev.key === '+' || ev.key === '=') zoomAt(1.25);
  else if (ev.key === '-' || ev.key === '_') zoomAt(1 / 1.25);
  else if (key === 'f' || ev.key === '0') fit();
});

// drag and drop anywhere on the page
let dragDepth = 0;
window.addEventListener('dragenter', (ev) => {
  if (![...(ev.dataTransfer?.types || [])].includes('Files')) return;
  ev.preventDefault();
  dragDepth++;
  els.dropHint.hidden = false;
  els.stage.classList.add('dragging');
});
window.addEventListener('dragover', (ev) => { ev.preventDefault(); });
window.addEventListener('dragleave', () => {
  if (--dragDepth <= 0) { dragDepth = 0; els.dropHint.hidden = true; els.stage.classList.remove('dragging'); }
});
window.addEventListener('drop', (ev) => {
  ev.preventDefault();
  dragDepth = 0;
  els.dropHint.hidden = true;
  els.stage.classList.remove('dragging');
  const file = ev.dataTransfer?.files?.[0];
  if (file) openImage(file);
});

updateCursorSize();
updateButtons();
loadInfo();
