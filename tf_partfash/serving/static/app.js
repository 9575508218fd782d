'use strict';
// serve.py's page: pick a garment (a gallery image or an uploaded photo, optionally boxed), change
// its attributes (§4.6), like results and search again (§5, Eq. 5-6). Plain DOM, no framework;
// the JSON API (serving/app.py) does all the work. The URL holds a gallery search, so a link
// reproduces it.

const SPECIAL = ['collar', 'color', 'fastening', 'pattern', 'sleevelen'];
const NAMES = {collar: 'collar', color: 'color', fastening: 'fastening', pattern: 'pattern',
  sleevelen: 'sleeves'};  // as the page shows them
const DEFAULT_TOP_K = 12;
const PAGE_SIZE = 24;
const CANVAS_SIDE = 400;     // the crop canvas's longer side in its own pixels, any photo's
const MIN_DRAG = 4;          // a shorter drag on the canvas (canvas pixels) is a click, not a box

const $ = (id) => document.getElementById(id);

const state = {
  health: null,              // /api/health
  query: null,               // {id: gallery ID} or {file: an uploaded photo}
  liked: new Set(),          // gallery rows picked for relevance feedback
  page: 0,                   // the gallery browser's page
  latest: 0,                 // the newest search's number: an older answer arriving late is dropped
};
const crop = {photo: null, url: null, box: null, start: null};  // the upload and its box

// --- talking to the API -------------------------------------------------------------------

async function api(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new Error(`The search service cannot be reached (${e.message}).`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body && body.error ? body.error
      : `The search service answered ${response.status} ${response.statusText}.`);
  }
  return body;
}

function showError(message) {
  $('error').textContent = message;
  if (message) reveal($('error'), true);
}

function reveal(node, evenAbove) {  // on a phone the alert or the results may be off screen
  const top = node.getBoundingClientRect().top;
  if (top > window.innerHeight - 40 || (evenAbove && top < 0)) node.scrollIntoView();
}

function element(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

// --- the form and the URL -------------------------------------------------------------------

function normalise(name) {  // as the API matches names: case, '_' and spaces do not matter
  return name.trim().toLowerCase().replace(/_/g, ' ').replace(/\s+/g, ' ');
}

function fillSelect(select, first, values) {
  select.replaceChildren(element('option', {value: '', textContent: first}),
    ...values.map((v) => element('option', {value: v, textContent: v})));
}

function chooseOption(select, value) {  // the option named `value`, else the first
  const wanted = value ? normalise(value) : '';
  const option = [...select.options].find((o) => o.value && normalise(o.value) === wanted);
  select.value = option ? option.value : '';
}

function applySettings(settings) {
  for (const a of SPECIAL) chooseOption($(`set-${a}`), settings.set[a]);
  chooseOption($('category'), settings.category);
  if (Number.isInteger(settings.top_k)) $('top-k').value = settings.top_k;
}

function formSpec(feedback) {
  const spec = {set: {}};
  for (const a of SPECIAL) {
    const value = $(`set-${a}`).value;
    if (value) spec.set[a] = value;
  }
  const topK = $('top-k').valueAsNumber;
  spec.top_k = Number.isInteger(topK) ? topK : $('top-k').value;  // the API explains a bad one
  if ($('category').value) spec.category = $('category').value;
  if (feedback.length) spec.feedback = feedback.map(String);
  return spec;
}

const listed = (text) => (text || '').split(',').map((s) => s.trim()).filter(Boolean);

function specFromUrl(params) {
  const spec = {set: {}, feedback: listed(params.get('feedback'))};
  for (const pair of listed(params.get('set'))) {
    const at = pair.search(/[:=]/);
    if (at < 0) throw new Error(`The link's set=${pair} is not attribute:value.`);
    spec.set[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  const topK = params.get('top_k');
  spec.top_k = topK === null ? DEFAULT_TOP_K : /^\d+$/.test(topK) ? Number(topK) : topK;
  if (params.get('category')) spec.category = params.get('category');
  if (!spec.feedback.length) delete spec.feedback;
  return spec;
}

function urlOf(answer) {  // an upload cannot be linked to: its URL keeps the settings only
  const enc = encodeURIComponent;
  const parts = [];
  if (answer.query.row !== null) parts.push(`query=${answer.query.row}`);
  const set = Object.entries(answer.set).map(([a, v]) => `${enc(a)}:${enc(v)}`).join(',');
  if (set) parts.push(`set=${set}`);
  if (answer.feedback && answer.query.row !== null) {
    parts.push(`feedback=${answer.feedback.picked.join(',')}`);
  }
  if (answer.top_k !== DEFAULT_TOP_K) parts.push(`top_k=${answer.top_k}`);
  if (answer.category) parts.push(`category=${enc(answer.category)}`);
  return location.pathname + (parts.length ? `?${parts.join('&')}` : '');
}

function remember(answer, mode) {  // mode: 'push' (a new search), 'replace' or 'none'
  const url = urlOf(answer);
  if (mode === 'none' || url === location.pathname + location.search) return;
  history[mode === 'push' ? 'pushState' : 'replaceState'](null, '', url);
}

function loadFromUrl(mode) {
  const params = new URLSearchParams(location.search);
  let spec;
  try {
    spec = specFromUrl(params);
  } catch (e) {
    showError(e.message);
    return;
  }
  applySettings(spec);
  if (!params.get('query')) return;
  useGalleryQuery(params.get('query'));
  state.liked = new Set((spec.feedback || []).filter((r) => /^\d+$/.test(r)).map(Number));
  search(spec, mode);
}

// --- searching ------------------------------------------------------------------------------

function requestInit(spec) {
  if (!state.query.file) {
    return {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({query: state.query.id, ...spec})};
  }
  const form = new FormData();
  form.append('image', state.query.file);
  if (crop.box) form.append('box', crop.box.join(','));
  form.append('request', JSON.stringify(spec));
  return {method: 'POST', body: form};
}

async function search(spec, mode) {
  if (!state.query) {
    showError('Pick a garment first: a random one, one from the gallery, or your own photo.');
    return;
  }
  const number = ++state.latest;
  showError('');
  $('results').setAttribute('aria-busy', 'true');
  $('summary').textContent = 'Searching…';
  try {
    const answer = await api('/api/search', requestInit(spec));
    if (number !== state.latest) return;
    if (answer.query.row !== null) state.query = {id: String(answer.query.row)};
    if (answer.feedback) state.liked = new Set(answer.feedback.picked);
    applySettings({set: answer.set, category: answer.category, top_k: answer.top_k});
    showQuery(answer.query);
    showResults(answer);
    remember(answer, mode);
    if (mode === 'push') reveal($('results-heading'), false);
  } catch (e) {
    if (number !== state.latest) return;
    showError(e.message);
    $('summary').textContent = 'The search failed (see the message above).';
  } finally {
    if (number === state.latest) $('results').setAttribute('aria-busy', 'false');
  }
}

function searchAfresh() {
  state.liked.clear();
  search(formSpec([]), 'push');
}

// --- the query ------------------------------------------------------------------------------

function useGalleryQuery(id) {
  state.query = {id: String(id)};
  state.liked.clear();
  $('upload').value = '';
  $('crop').hidden = true;
}

function pickRow(row) {
  useGalleryQuery(row);
  searchAfresh();
}

function showQuery(query) {
  if (query.row !== null) {
    $('query-image').src = `${query.image}?size=400`;
    $('query-caption').textContent = `Gallery row ${query.row}: ${query.path}`;
  }
  for (const thumb of $('gallery').children) {
    thumb.setAttribute('aria-current', String(Number(thumb.dataset.row) === query.row));
  }
  $('query').hidden = query.row === null;
  const rows = SPECIAL.map((a) => element('tr', {}, [
    element('th', {scope: 'row', textContent: NAMES[a]}),
    element('td', {textContent: query.predicted[a]}),
    element('td', {textContent: query.labels[a] || '—'}),
  ]));
  $('query-attributes').tBodies[0].replaceChildren(...rows);
  $('query-attributes').hidden = false;
}

function clearAnswer(message) {
  $('query').hidden = true;
  $('query-attributes').hidden = true;
  $('results').replaceChildren();
  $('summary').textContent = message;
  updateFeedback();
}

// --- results and relevance feedback ---------------------------------------------------------

function describe(answer) {
  const results = answer.results;
  const changes = Object.entries(answer.set).map(([a, v]) => `${NAMES[a]} → ${v}`);
  const parts = [`${results.length} result${results.length === 1 ? '' : 's'} `
    + (changes.length ? `for ${changes.join(', ')}` : 'with no attribute change')
    + (answer.category ? ` among ${answer.category}` : '')];
  if (answer.feedback) {
    const weights = answer.feedback.weights;
    parts.push(weights
      ? `re-weighted by ${answer.feedback.picked.length} liked (${Object.entries(weights)
        .map(([n, w]) => `${n} ${w.toFixed(2)}`).join(', ')})`
      : 'the liked image as the new query');
  }
  const judged = results.filter((r) => r.match !== null);
  if (judged.length) {
    parts.push(`${judged.filter((r) => r.match).length} of ${judged.length} labelled as asked `
      + '(green frame)');
  }
  return `${parts.join('; ')}.`;
}

function resultCard(result, changed, before) {
  const card = element('div', {className: 'result', tabIndex: 0});
  card.classList.toggle('match', result.match === true);
  card.dataset.row = result.row;
  card.setAttribute('role', 'button');
  card.setAttribute('aria-pressed', String(state.liked.has(result.row)));
  const was = before === undefined ? ''
    : before.has(result.row) ? `was #${before.get(result.row)}` : 'new';
  const attributes = SPECIAL.map((a) => element('li', {className: a in changed ? 'changed' : ''},
    [element('span', {className: 'name', textContent: `${NAMES[a]} `}), result.predicted[a]]));
  card.append(
    element('img', {src: `${result.image}?size=240`, alt: '', loading: 'lazy'}),
    element('p', {className: 'rank'}, [
      element('strong', {textContent: `#${result.rank}`}),
      ` d ${result.distance.toPrecision(3)}`,
      was && element('span', {className: 'was', textContent: ` (${was})`}),
    ]),
    element('ul', {className: 'predicted'}, attributes),
  );
  if (result.match) card.append(element('p', {className: 'badge', textContent: '✓ matches'}));
  const label = [`Result ${result.rank}, row ${result.row}, distance ${result.distance
    .toPrecision(3)}`, was, SPECIAL.map((a) => result.predicted[a]).join(', '),
  result.match ? 'labels match' : ''].filter(Boolean).join('; ');
  card.setAttribute('aria-label', label);
  return card;
}

function showResults(answer) {
  const before = answer.before_feedback
    ? new Map(answer.before_feedback.map((r) => [r.row, r.rank])) : undefined;
  $('results').replaceChildren(...answer.results.map((r) => resultCard(r, answer.set, before)));
  $('summary').textContent = describe(answer);
  updateFeedback();
}

function toggleLike(card) {
  const row = Number(card.dataset.row);
  if (!state.liked.delete(row)) state.liked.add(row);
  card.setAttribute('aria-pressed', String(state.liked.has(row)));
  updateFeedback();
}

function updateFeedback() {
  const n = state.liked.size;
  $('again').textContent = `Search again with ${n} liked`;
  $('again').disabled = n === 0 || !state.query;
  const onePick = state.health && !state.health.signatures && n > 1;
  $('one-pick').hidden = !onePick;
  $('one-pick').textContent = onePick ? `This ${state.health.method} model weighs only one `
    + 'liked image (it replaces the query): like just one.' : '';
}

function onCardKey(event) {
  const card = event.target.closest('.result');
  if (card && (event.key === 'Enter' || event.key === ' ')) {
    event.preventDefault();  // Space would scroll the page
    toggleLike(card);
  }
}

// --- the gallery browser --------------------------------------------------------------------

function showPage(page) {
  const size = state.health.gallery_size;
  const pages = Math.max(1, Math.ceil(size / PAGE_SIZE));
  state.page = Math.min(Math.max(page, 0), pages - 1);
  const first = state.page * PAGE_SIZE;
  const last = Math.min(first + PAGE_SIZE, size) - 1;
  const thumbs = [];
  for (let row = first; row <= last; row++) {
    const thumb = element('button', {type: 'button', className: 'thumb'},
      [element('img', {src: `/api/images/${row}?size=96`, alt: '', loading: 'lazy'})]);
    thumb.dataset.row = row;
    thumb.setAttribute('aria-label', `Search like gallery row ${row}`);
    thumb.setAttribute('aria-current', String(state.query && state.query.id === String(row)));
    thumbs.push(thumb);
  }
  $('gallery').replaceChildren(...thumbs);
  $('page-text').textContent = `Rows ${first}–${last} of ${size}`;
  $('prev-page').disabled = state.page === 0;
  $('next-page').disabled = state.page === pages - 1;
}

// --- an uploaded photo and its box ----------------------------------------------------------

function usePhoto(file) {
  state.query = {file};
  state.liked.clear();
  crop.box = null;
  crop.photo = null;
  if (crop.url) URL.revokeObjectURL(crop.url);
  crop.url = URL.createObjectURL(file);
  const photo = new Image();
  photo.onload = () => {
    crop.photo = photo;
    const scale = CANVAS_SIDE / Math.max(photo.naturalWidth, photo.naturalHeight);
    $('crop-canvas').width = Math.round(photo.naturalWidth * scale);
    $('crop-canvas').height = Math.round(photo.naturalHeight * scale);
    drawCrop();
  };
  photo.onerror = () => {
    $('box-text').textContent = 'This browser cannot show the photo; it can still be searched, '
      + 'as a whole.';
  };
  photo.src = crop.url;
  $('crop').hidden = false;
  clearAnswer(`Your photo ${file.name}: draw a box if you like, then press Search.`);
}

function drawCrop() {
  const canvas = $('crop-canvas');
  const context = canvas.getContext('2d');
  const photo = crop.photo;
  context.drawImage(photo, 0, 0, canvas.width, canvas.height);
  const [width, height] = [photo.naturalWidth, photo.naturalHeight];
  if (!crop.box) {
    $('box-text').textContent = `No box: the whole ${width}×${height} photo is searched. `
      + 'Drag on it to draw one around the garment.';
    return;
  }
  const s = canvas.width / width;
  const [x0, y0, x1, y1] = crop.box;
  context.fillStyle = 'rgba(0, 0, 0, 0.45)';  // dim what the box leaves out
  context.beginPath();
  context.rect(0, 0, canvas.width, canvas.height);
  context.rect(x0 * s, y0 * s, (x1 - x0) * s, (y1 - y0) * s);
  context.fill('evenodd');
  context.strokeStyle = '#ffd400';
  context.lineWidth = 2;
  context.strokeRect(x0 * s, y0 * s, (x1 - x0) * s, (y1 - y0) * s);
  $('box-text').textContent = `Box ${x0},${y0} to ${x1},${y1}: only these ${x1 - x0}×${y1 - y0} `
    + `of the photo's ${width}×${height} pixels are searched.`;
}

function photoPoint(event) {  // the pointer in the photo's own pixels, inside the photo
  const rect = $('crop-canvas').getBoundingClientRect();
  const clamp = (v) => Math.min(Math.max(v, 0), 1);
  return [clamp((event.clientX - rect.left) / rect.width) * crop.photo.naturalWidth,
    clamp((event.clientY - rect.top) / rect.height) * crop.photo.naturalHeight];
}

function onPointerDown(event) {
  if (!crop.photo) return;
  event.currentTarget.setPointerCapture(event.pointerId);
  crop.start = {point: photoPoint(event), x: event.clientX, y: event.clientY};
}

function onPointerMove(event) {
  const start = crop.start;
  if (!start || Math.max(Math.abs(event.clientX - start.x),
    Math.abs(event.clientY - start.y)) < MIN_DRAG) return;
  const [x, y] = photoPoint(event);
  const [sx, sy] = start.point;
  crop.box = [Math.floor(Math.min(sx, x)), Math.floor(Math.min(sy, y)),
    Math.ceil(Math.max(sx, x)), Math.ceil(Math.max(sy, y))];
  drawCrop();
}

// --- start ----------------------------------------------------------------------------------

function bind() {
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    searchAfresh();
  });
  $('again').addEventListener('click', () => search(formSpec([...state.liked]), 'push'));
  $('clear-likes').addEventListener('click', () => {
    state.liked.clear();
    for (const card of $('results').children) card.setAttribute('aria-pressed', 'false');
    updateFeedback();
  });
  $('results').addEventListener('click', (event) => {
    const card = event.target.closest('.result');
    if (card) toggleLike(card);
  });
  $('results').addEventListener('keydown', onCardKey);
  $('random').addEventListener('click',
    () => pickRow(Math.floor(Math.random() * state.health.gallery_size)));
  $('gallery').addEventListener('click', (event) => {
    const thumb = event.target.closest('.thumb');
    if (thumb) pickRow(Number(thumb.dataset.row));
  });
  $('browse').addEventListener('toggle', () => {
    if ($('browse').open && !$('gallery').children.length) showPage(state.page);
  });
  $('prev-page').addEventListener('click', () => showPage(state.page - 1));
  $('next-page').addEventListener('click', () => showPage(state.page + 1));
  $('upload').addEventListener('change', () => {
    if ($('upload').files.length) usePhoto($('upload').files[0]);
  });
  const canvas = $('crop-canvas');
  canvas.addEventListener('pointerdown', onPointerDown);
  canvas.addEventListener('pointermove', onPointerMove);
  for (const end of ['pointerup', 'pointercancel']) {
    canvas.addEventListener(end, () => { crop.start = null; });
  }
  $('clear-box').addEventListener('click', () => {
    crop.box = null;
    if (crop.photo) drawCrop();
  });
  window.addEventListener('popstate', () => loadFromUrl('none'));
}

async function start() {
  bind();
  try {
    const [health, vocabulary] = await Promise.all([api('/api/health'), api('/api/attributes')]);
    state.health = health;
    for (const a of SPECIAL) fillSelect($(`set-${a}`), 'keep', vocabulary.special[a]);
    fillSelect($('category'), 'any', vocabulary.general.category);
    $('status').textContent = `${health.method} model, ${health.gallery_size} gallery images `
      + `(${health.gallery}; ${health.backend}, ${health.distance} distance)`;
  } catch (e) {
    $('status').textContent = 'The search service is not answering.';
    showError(e.message);
    return;
  }
  $('random').disabled = false;
  $('search').disabled = false;
  loadFromUrl('replace');
}

start();
