// The sandbox's inbox page. Every value from the sandbox is set with textContent (or an
// attribute), never parsed as markup: a number or reference cannot inject anything.
'use strict';

(() => {
  const TOKEN_KEY = 'otp-sandbox-token';
  const MAX_ROWS = 100; // as many as the inbox answers
  const RETRY_MS = 1000;

  const $ = (id) => document.getElementById(id);
  /** id -> { otp, tr, cells, deadline } */
  const rows = new Map();
  let stream = null;
  let retryTimer = null;

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const held = token();
    if (held) headers.set('Authorization', 'Bearer ' + held);
    return fetch(path, { ...options, headers, cache: 'no-store', credentials: 'omit' });
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function setConnection(state, text) {
    const badge = $('connection');
    badge.dataset.state = state;
    badge.textContent = text;
  }

  function retryLater(step) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(step, RETRY_MS);
  }

  function closeStream() {
    if (stream) stream.close();
    stream = null;
  }

  // --- The token -------------------------------------------------------------------------

  function showLogin(message) {
    closeStream();
    clearTimeout(retryTimer);
    for (const id of ['inbox', 'magic-section', 'controls']) $(id).hidden = true;
    $('login').hidden = false;
    const error = $('login-error');
    error.hidden = !message;
    error.textContent = message || '';
    setConnection('locked', 'token needed');
    $('token').focus();
  }

  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault(); // never submitted: the token must not land in a URL
    const given = $('token').value.trim();
    if (!given) return;
    sessionStorage.setItem(TOKEN_KEY, given);
    $('token').value = '';
    start();
  });

  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    rows.clear();
    $('rows').replaceChildren();
    showLogin();
  });

  /** A 401: the token held (if any) is wrong now, so it is dropped and asked for. */
  function refused() {
    const held = token();
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(held ? 'The sandbox refused that token.' : '');
  }

  // --- Start: the magic numbers (which also tells whether a token is needed), then events --

  async function start() {
    let response;
    try {
      response = await api('/__sandbox/magic');
    } catch (_) {
      setConnection('offline', 'sandbox unreachable, retrying…');
      return retryLater(start);
    }
    if (response.status === 401) return refused();
    if (!response.ok) return retryLater(start);
    renderMagic(await response.json());
    $('login').hidden = true;
    for (const id of ['inbox', 'magic-section', 'controls']) $(id).hidden = false;
    $('logout').hidden = !token();
    connect();
  }

  async function connect() {
    closeStream();
    setConnection('connecting', 'connecting…');
    let response;
    try {
      // EventSource cannot send a header: the token buys a short-lived ticket for the URL.
      response = await api('/__sandbox/ticket', { method: 'POST' });
    } catch (_) {
      setConnection('offline', 'sandbox unreachable, retrying…');
      return retryLater(connect);
    }
    if (response.status === 401) return refused();
    if (!response.ok) return retryLater(connect);
    const { ticket } = await response.json();
    const url = '/__sandbox/events' + (ticket ? '?ticket=' + encodeURIComponent(ticket) : '');
    const source = new EventSource(url);
    stream = source;
    source.addEventListener('open', () => setConnection('live', 'live'));
    source.addEventListener('snapshot', (event) => replaceAll(JSON.parse(event.data).otps));
    source.addEventListener('otp', (event) => upsert(JSON.parse(event.data)));
    source.addEventListener('update', (event) => upsert(JSON.parse(event.data)));
    source.addEventListener('reset', () => replaceAll([]));
    source.addEventListener('error', () => {
      if (stream !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a restarted sandbox voids tickets): a new ticket, or the login form.
        setConnection('offline', 'reconnecting…');
        retryLater(connect);
      } else {
        // The browser reconnects by itself (the sandbox asked for it with `retry:`).
        setConnection('connecting', 'reconnecting…');
      }
    });
  }

  // --- The OTPs ----------------------------------------------------------------------------

  function replaceAll(otps) {
    rows.clear();
    $('rows').replaceChildren();
    for (const otp of [...otps].sort((a, b) => a.id - b.id)) upsert(otp);
    refreshCount();
  }

  /** Adds an OTP, or updates the row it already has (by id, so a repeat is harmless). */
  function upsert(otp) {
    let row = rows.get(otp.id);
    if (!row) {
      row = build(otp);
      rows.set(otp.id, row);
      insertInOrder(row);
      while (rows.size > MAX_ROWS) {
        const oldest = Math.min(...rows.keys());
        rows.get(oldest).tr.remove();
        rows.delete(oldest);
      }
    }
    row.otp = otp;
    row.deadline = otp.valid_for_ms === null || otp.valid_for_ms === undefined ? null : performance.now() + otp.valid_for_ms;
    row.tr.dataset.status = otp.status;
    paint(row);
    filterRow(row);
    refreshCount();
  }

  function insertInOrder(row) {
    const body = $('rows');
    for (const tr of body.children) {
      if (Number(tr.dataset.id) < row.otp.id) {
        body.insertBefore(row.tr, tr);
        return;
      }
    }
    body.append(row.tr);
  }

  function hue(name) {
    let hash = 0;
    for (const c of name) hash = (hash * 31 + c.codePointAt(0)) % 360;
    return hash;
  }

  function shorten(reference) {
    return reference.length > 12 ? reference.slice(0, 8) + '…' : reference;
  }

  function build(otp) {
    const tr = document.createElement('tr');
    tr.dataset.id = String(otp.id);
    tr.dataset.mobile = otp.mobile;
    const sent = new Date(otp.sent_at);
    const time = element('td', Number.isNaN(sent.getTime()) ? otp.sent_at : sent.toLocaleTimeString([], { hour12: false }), 'time');
    time.title = otp.sent_at;
    const gateway = element('td', null, 'gateway');
    const tag = element('span', otp.gateway, 'tag');
    tag.style.setProperty('--hue', String(hue(otp.gateway)));
    gateway.append(tag);
    const mobile = element('td', otp.mobile, 'mobile');
    const code = element('td', null, 'code');
    const digits = element('span', otp.otp, 'digits');
    const copyButton = element('button', 'Copy', 'copy');
    copyButton.type = 'button';
    copyButton.title = 'Copy the code';
    copyButton.addEventListener('click', () => copy(otp.otp, copyButton));
    code.append(digits, copyButton);
    const reference = element('td', otp.reference === null ? '–' : shorten(otp.reference), 'reference');
    if (otp.reference !== null) reference.title = otp.reference;
    const validity = element('td', null, 'validity');
    const status = element('td', null, 'status');
    const badge = element('span', null, 'badge');
    status.append(badge);
    tr.append(time, gateway, mobile, code, reference, validity, status);
    return { otp, tr, cells: { validity, badge }, deadline: null };
  }

  /** The validity left and the status, as of now (a pending OTP past its time shows expired). */
  function paint(row) {
    const { otp, cells } = row;
    let status = otp.status;
    if (row.deadline === null) {
      cells.validity.textContent = status === 'pending' ? 'no expiry' : '–';
    } else {
      const left = Math.max(0, row.deadline - performance.now());
      if (status === 'pending' && left === 0) status = 'expired';
      cells.validity.textContent = status === 'pending' ? formatLeft(left) : '–';
    }
    cells.badge.textContent = status;
    cells.badge.dataset.status = status;
  }

  function formatLeft(ms) {
    const seconds = Math.ceil(ms / 1000);
    const minutes = Math.floor(seconds / 60);
    return minutes + ':' + String(seconds % 60).padStart(2, '0');
  }

  setInterval(() => {
    for (const row of rows.values()) paint(row);
  }, 1000);

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      // No clipboard API (a plain-HTTP page from another machine): the old way.
      const area = element('textarea', null, 'offscreen');
      area.value = text;
      area.setAttribute('readonly', '');
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    button.textContent = 'Copied';
    setTimeout(() => {
      button.textContent = 'Copy';
    }, 1500);
  }

  // --- Filter, count, reset ----------------------------------------------------------------

  const filterText = () => $('filter').value.replace(/\s+/g, '');

  function filterRow(row) {
    const wanted = filterText();
    row.tr.hidden = wanted !== '' && !row.otp.mobile.includes(wanted);
  }

  function refreshCount() {
    const shown = [...rows.values()].filter((row) => !row.tr.hidden).length;
    const total = rows.size;
    $('count').textContent = shown === total ? total + (total === 1 ? ' OTP' : ' OTPs') : shown + ' of ' + total + ' shown';
    $('empty').hidden = total !== 0;
    document.title = (total ? '(' + total + ') ' : '') + 'otp sandbox · inbox';
  }

  $('filter').addEventListener('input', () => {
    for (const row of rows.values()) filterRow(row);
    refreshCount();
  });

  $('reset').addEventListener('click', async () => {
    let response;
    try {
      response = await api('/__sandbox/reset', { method: 'POST' });
    } catch (_) {
      return;
    }
    if (response.status === 401) return refused();
    if (response.ok) replaceAll([]); // the `reset` event says the same, to every page
  });

  // --- Magic numbers -----------------------------------------------------------------------

  /** Text with `backticked` parts as code elements, each set as text. */
  function withCode(text) {
    const cell = document.createElement('td');
    String(text).split('`').forEach((part, index) => {
      if (part) cell.append(index % 2 ? element('code', part) : document.createTextNode(part));
    });
    return cell;
  }

  function renderMagic(table) {
    const head = $('magic-head');
    head.replaceChildren(element('th', 'Number'), element('th', 'Stands for'), ...table.gateways.map((g) => element('th', g)));
    const body = $('magic-rows');
    body.replaceChildren(
      ...table.numbers.map((number) => {
        const tr = document.createElement('tr');
        tr.append(element('td', number.mobile, 'mobile'), element('td', number.case), ...number.answers.map(withCode));
        return tr;
      }),
    );
  }

  start();
})();
