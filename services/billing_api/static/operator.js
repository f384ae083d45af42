// The operator page: every customer account (create, edit, disable, its invoice recipients), the last month's
// run, failed payments with a retry, documents whose e-mail reached nobody (with a resend), invoices across
// accounts (each with its e-mail, its credit notes, and a form that credits it) and the audit log. Plain DOM;
// texts via textContent.

import {el, setUpLanguage} from './page.js';
import {ApiError} from './api.js';
import {
  SignInError, buildLogoutUrl, clearSession, completeHostedSignIn, currentSession, signInWithPassword,
  startHostedSignIn,
} from './auth.js';
import {
  addTexts, correctionLabel, creditNoteKind, currentLanguage, formatDateTime, formatMoney, isUndeliverable, label,
  parseAddresses, setLanguage, statusLabel, statusTone, t, translateDocument,
} from './i18n.js';
import {OPERATOR_TEXTS} from './operator-texts.js';

addTexts(OPERATOR_TEXTS);

const STATUSES = ['payment_failed', 'action_required', 'open', 'paid', 'void', 'uncollectible', 'draft', 'pending'];
const RUN_STATES = {waiting_for_final_costs: 'runWaiting', enqueuing: 'runEnqueuing', enqueued: 'runEnqueued'};
// What a credit note can be issued on (the API refuses others with 409 too); a paid one's credit goes somewhere.
const CREDITABLE = ['open', 'payment_failed', 'action_required', 'paid'];
const PAID_SETTLEMENTS = ['refund', 'balance', 'out_of_band'];
// After a resend, how long and how often the page asks what became of it (the worker sends it).
const MAIL_POLL_MS = 1000;
const MAIL_POLL_TIMEOUT_MS = 30_000;
const config = JSON.parse(document.getElementById('page-config').textContent);
const pageUrl = window.location.origin + window.location.pathname;
const $ = (id) => document.getElementById(id);

const state = {
  session: null, accounts: [], run: null, failed: [], invoices: [], audit: [], editing: null,
  editingEmails: [], // the invoice recipients of the account being edited, as loaded
  undelivered: [], // documents whose latest e-mail reached nobody (null: could not be loaded)
  selected: null, // the invoice whose view is open
  creditNotes: [], // its credit notes
  mail: null, // its e-mail: GET /operator/documents/{id}/mail, or {failed: true}
  creditNoteMail: {}, // creditNoteId -> the same for each of its credit notes
  proposal: null, // {invoiceId, body, preview} while a credit note waits for "Confirm"
};

function show(id, visible = true) {
  $(id).hidden = !visible;
}

function showOnly(...ids) {
  for (const id of ['sign-in', 'no-access', 'load-error', 'operator']) show(id, ids.includes(id));
}

function setPageStatus(text) {
  $('page-status').textContent = text || '';
  show('page-status', Boolean(text));
}

// --- the operator API ---------------------------------------------------------------------------

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(config.apiBase + path, {
      method,
      headers: {
        Authorization: `Bearer ${state.session?.accessToken ?? ''}`, Accept: 'application/json',
        ...(body === undefined ? {} : {'Content-Type': 'application/json'}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'network', 'network error');
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer.error?.code, answer.error?.message);
  return answer;
}

function previousMonth(now = new Date()) {
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return month.toISOString().slice(0, 7);
}

// --- sign-in ----------------------------------------------------------------------------------

function showSignIn(message = '') {
  state.session = null;
  showOnly('sign-in');
  show('sign-out', false);
  show('signed-in-as', false);
  const local = config.authMode === 'local';
  show('sign-in-form', local);
  show('hosted-sign-in', !local);
  $('sign-in-error').textContent = message;
  show('sign-in-error', Boolean(message));
  setPageStatus('');
}

function signedIn(session) {
  state.session = session;
  $('signed-in-as').textContent = t('signedInAs', {name: session.username});
  show('signed-in-as', Boolean(session.username));
  show('sign-out', true);
}

async function onPasswordSignIn(event) {
  event.preventDefault();
  const username = $('username').value.trim();
  const password = $('password').value;
  if (!username || !password) {
    showSignIn(t('wrongPassword'));
    return;
  }
  setPageStatus(t('signingIn'));
  try {
    const session = await signInWithPassword(config.cognito, username, password);
    $('password').value = '';
    signedIn(session);
    await load();
  } catch (error) {
    showSignIn(t(error instanceof SignInError ? error.code : 'signInFailed'));
  }
}

function signOut() {
  clearSession();
  if (config.authMode === 'hosted-ui' && config.cognito.domain) {
    window.location.assign(buildLogoutUrl(config.cognito, pageUrl));
    return;
  }
  showSignIn();
}

function handleApiError(error) {
  if (error instanceof ApiError && error.status === 401) {
    clearSession();
    showSignIn(t('sessionExpired'));
  } else if (error instanceof ApiError && error.status === 403) {
    showOnly('no-access');
    setPageStatus('');
  } else {
    showOnly('load-error');
    setPageStatus('');
  }
}

// --- loading ------------------------------------------------------------------------------------

async function load() {
  setPageStatus(t('loading'));
  try {
    const period = $('filter-period').value;
    const status = $('filter-status').value;
    const query = new URLSearchParams();
    if (period) query.set('period', period);
    if (status) query.set('status', status);
    const [accounts, run, failed, action, invoices, audit, undelivered] = await Promise.all([
      call('GET', '/operator/accounts'),
      call('GET', `/operator/runs/${previousMonth()}`),
      call('GET', '/operator/invoices?status=payment_failed'),
      call('GET', '/operator/invoices?status=action_required'),
      call('GET', `/operator/invoices${query.toString() ? `?${query}` : ''}`),
      call('GET', '/operator/audit?limit=50'),
      undeliveredDocuments(),
    ]);
    Object.assign(state, {
      accounts: accounts.accounts, run, failed: [...failed.invoices, ...action.invoices], invoices: invoices.invoices,
      audit: audit.entries, undelivered,
    });
    if (state.selected) {
      state.selected = state.invoices.find((invoice) => invoice.invoiceId === state.selected.invoiceId)
        ?? state.selected;
      state.creditNotes = (await call('GET', creditNotesPath(state.selected.invoiceId))).creditNotes;
      await loadMail();
    }
    showOnly('operator');
    render();
    setPageStatus('');
  } catch (error) {
    handleApiError(error);
  }
}

// --- rendering ----------------------------------------------------------------------------------

function table(headers, rows, emptyText) {
  if (!rows.length) return el('p', {className: 'placeholder'}, emptyText);
  return el('div', {className: 'table-scroll'}, el('table', {},
    el('thead', {}, el('tr', {}, headers.map((header) => el('th', {scope: 'col'}, header)))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((cell) => el('td', {}, cell)))))));
}

function badge(status) {
  return el('span', {className: `badge ${statusTone(status)}`}, statusLabel(status));
}

function render() {
  renderRun();
  renderFailed();
  renderUndelivered();
  renderAccounts();
  renderInvoices();
  renderInvoiceDetail();
  renderAudit();
}

function renderRun() {
  const {period, run, invoicesByStatus} = state.run;
  $('run-heading').textContent = t('run', {period});
  if (!run) {
    $('run-body').replaceChildren(el('p', {className: 'placeholder'}, t('runNotStarted')));
    return;
  }
  const total = Object.values(invoicesByStatus).reduce((sum, count) => sum + count, 0);
  const settled = Object.entries(invoicesByStatus)
    .filter(([status]) => !['pending', 'draft'].includes(status)).reduce((sum, [, count]) => sum + count, 0);
  const done = run.status === 'enqueued' && total > 0 && settled === total;
  // replaceChildren prints a null as the text "null": only the parts there are.
  const parts = [
    el('p', {className: 'run-state'}, t(done ? 'runDone' : RUN_STATES[run.status] || run.status)),
    el('h3', {}, t('invoicesByStatus')),
    el('ul', {}, Object.entries(invoicesByStatus).map(([status, count]) => el('li', {}, badge(status), ` ${count}`))),
  ];
  if (run.skippedAccounts.length) {
    parts.push(el('h3', {}, t('skippedAccounts')),
      el('ul', {}, run.skippedAccounts.map((skipped) => el('li', {}, `${skipped.accountId}: ${skipped.reason}`))));
  }
  $('run-body').replaceChildren(...parts);
}

function renderFailed() {
  const rows = state.failed.map((invoice) => [
    invoice.accountId, invoice.invoiceId, badge(invoice.status), formatMoney(invoice.amount, invoice.currency),
    String(invoice.attemptCount),
    el('button', {type: 'button', 'aria-label': t('retryLabel', {invoice: invoice.invoiceId}),
      onclick: (event) => retry(invoice.invoiceId, event.target)}, t('retryPayment')),
  ]);
  $('failed-body').replaceChildren(table(
    [t('account'), t('invoiceId'), t('status'), t('amount'), t('attempts'), ''], rows, t('noFailedPayments')));
}

async function retry(invoiceId, button) {
  button.disabled = true;
  const result = $('retry-result');
  try {
    const outcome = await call('POST', `/operator/invoices/${encodeURIComponent(invoiceId)}/retry`, {});
    if (outcome.paid) result.textContent = t('retryPaid', {invoice: invoiceId});
    else if (outcome.actionUrl) result.textContent = t('retryAction', {invoice: invoiceId, url: outcome.actionUrl});
    else if (outcome.declined) result.textContent = t('retryDeclined', {invoice: invoiceId, code: outcome.declined});
    else result.textContent = t('retryPending', {invoice: invoiceId, status: outcome.stripeStatus});
    result.className = `notice ${outcome.paid ? 'success' : 'error'}`;
  } catch (error) {
    result.textContent = error.message;
    result.className = 'notice error';
  }
  result.hidden = false;
  button.disabled = false;
  await load();
}

function renderAccounts() {
  const rows = state.accounts.map((account) => [
    account.accountId, account.name || '', emailCell(account), account.costScope || t('wholePayer'),
    account.baseFee ? formatMoney(account.baseFee, 'EUR') : t('defaultFee'),
    account.paymentMethod.status === 'active'
      ? `${account.paymentMethod.type}${account.paymentMethod.last4 ? ` •••• ${account.paymentMethod.last4}` : ''}`
      : t('noPaymentMethod'),
    account.lastInvoice ? el('span', {}, `${account.lastInvoice.period} `, badge(account.lastInvoice.status)) : '–',
    account.disabled ? t('disabled') : t('active'),
    el('span', {className: 'row-actions'},
      el('button', {type: 'button', className: 'secondary', onclick: () => editAccount(account),
        'aria-label': `${t('edit')} ${account.accountId}`}, t('edit')),
      el('button', {type: 'button', className: 'secondary', onclick: () => inviteAdmin(account),
        'aria-label': `${t('invite')} ${account.accountId}`}, t('invite')),
      el('button', {type: 'button', className: 'secondary', onclick: () => toggleAccount(account),
        'aria-label': `${t(account.disabled ? 'enable' : 'disable')} ${account.accountId}`},
      t(account.disabled ? 'enable' : 'disable'))),
  ]);
  $('accounts-body').replaceChildren(table(
    [t('account'), t('name'), t('email'), t('costScope'), t('baseFee'), t('paymentMethodColumn'), t('lastInvoice'),
      t('state'), ''], rows, t('noAccounts')));
}

/** The account's e-mail and, when the invoices go elsewhere or an address is undeliverable, whom they go to. */
function emailCell(account) {
  const recipients = account.invoiceEmails ?? [];
  const undeliverable = account.undeliverableEmails ?? [];
  const onlyItsEmail = recipients.length === 1 && recipients[0].toLowerCase() === (account.email || '').toLowerCase();
  if (!recipients.length || (onlyItsEmail && !undeliverable.length)) return account.email || '';
  return el('div', {className: 'email-cell'}, account.email || '',
    el('small', {className: 'muted'}, t('invoicesTo')),
    recipientList(recipients, undeliverable));
}

/** Addresses, each undeliverable one marked so ("nicht zustellbar"). */
function recipientList(addresses, undeliverable) {
  if (!addresses?.length) return '–';
  return el('ul', {className: 'recipient-list'}, addresses.map((address) => {
    const bad = isUndeliverable(address, undeliverable);
    return el('li', {'data-recipient': address, className: bad ? 'undeliverable' : null},
      el('span', {className: 'address'}, address),
      bad ? el('span', {className: 'badge failed'}, t('undeliverable')) : null);
  }));
}

function renderInvoices() {
  const select = $('filter-status');
  const chosen = select.value;
  select.replaceChildren(el('option', {value: ''}, t('allStatuses')),
    ...STATUSES.map((status) => el('option', {value: status}, statusLabel(status))));
  select.value = chosen;
  const rows = state.invoices.map((invoice) => [
    (invoice.period?.start || '').slice(0, 7), invoice.invoiceId, invoice.accountId, statusBadges(invoice),
    formatMoney(invoice.netAmount, invoice.currency), formatMoney(invoice.taxAmount, invoice.currency),
    formatMoney(invoice.amount, invoice.currency), String(invoice.attemptCount), einvoiceLinks(invoice),
    el('button', {type: 'button', className: 'secondary',
      'aria-label': t('openInvoiceLabel', {invoice: invoice.invoiceId}), onclick: () => openInvoice(invoice)},
    t('openInvoice')),
  ]);
  $('all-invoices-body').replaceChildren(table(
    [t('period'), t('invoiceId'), t('account'), t('status'), t('netAmount'), t('taxAmount'), t('amount'),
      t('attempts'), t('einvoice'), ''], rows, t('noInvoicesFound')));
}

/** The payment status and, once credit notes took something back, "cancelled" or "corrected" beside it. */
function statusBadges(invoice) {
  if (!invoice.correction) return badge(invoice.status);
  return el('span', {className: 'badges'}, badge(invoice.status),
    el('span', {className: 'badge corrected', 'data-correction': invoice.correction},
      correctionLabel(invoice.correction)));
}

// The e-invoice files need the operator's token: fetched, then saved from a Blob.
function downloadEInvoice(invoiceId, format) {
  return downloadFile(`/operator/invoices/${encodeURIComponent(invoiceId)}/einvoice?format=${format}`, invoiceId);
}

async function downloadFile(path, fallbackName) {
  try {
    const response = await fetch(`${config.apiBase}${path}`,
      {headers: {Authorization: `Bearer ${state.session?.accessToken ?? ''}`}, cache: 'no-store'});
    if (!response.ok) throw new ApiError(response.status);
    const name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '')?.[1] || fallbackName;
    const url = URL.createObjectURL(await response.blob());
    const link = el('a', {href: url, download: name});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    setPageStatus(t('downloadFailed'));
  }
}

function einvoiceLinks(invoice) {
  const links = [];
  if (invoice.einvoice?.xrechnung) {
    links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'xrechnung',
      onclick: () => downloadEInvoice(invoice.invoiceId, 'xrechnung')}, t('einvoiceXml')));
  }
  if (invoice.einvoice?.zugferd) {
    links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'zugferd',
      onclick: () => downloadEInvoice(invoice.invoiceId, 'zugferd')}, t('einvoicePdf')));
  }
  return links.length ? el('span', {className: 'links'}, links) : '–';
}

// --- one invoice: its credit notes, and the form that credits it ------------------------------------

function creditNotesPath(invoiceId) {
  return `/operator/invoices/${encodeURIComponent(invoiceId)}/credit-notes`;
}

async function openInvoice(invoice) {
  state.selected = invoice;
  state.creditNotes = [];
  state.mail = null;
  state.creditNoteMail = {};
  state.proposal = null;
  show('credit-result', false);
  resetResendForm();
  try {
    state.creditNotes = (await call('GET', creditNotesPath(invoice.invoiceId))).creditNotes;
    await loadMail();
  } catch (error) {
    handleApiError(error);
    return;
  }
  renderInvoiceDetail();
  resetCreditForm();
  $('invoice-detail').scrollIntoView({block: 'start'});
  $('invoice-detail-heading').focus();
}

function renderInvoiceDetail() {
  const invoice = state.selected;
  show('invoice-detail', Boolean(invoice));
  if (!invoice) return;
  $('invoice-detail-heading').textContent = t('invoiceDetail', {invoice: invoice.number || invoice.invoiceId});
  const money = (amount) => formatMoney(amount, invoice.currency);
  const figure = (label, value) => el('div', {className: 'figure'}, el('dt', {}, label), el('dd', {}, value));
  $('invoice-summary').replaceChildren(el('dl', {className: 'figures summary'},
    figure(t('invoiceId'), invoice.invoiceId), figure(t('account'), invoice.accountId),
    figure(t('status'), statusBadges(invoice)), figure(t('netAmount'), money(invoice.netAmount)),
    figure(t('taxAmount'), money(invoice.taxAmount)), figure(t('grossAmount'), money(invoice.amount)),
    figure(t('credited'), money(invoice.credited))));
  renderMail();
  const rows = state.creditNotes.map((note) => [
    note.number || note.creditNoteId, creditNoteKind(note.full), label('creditNoteStates', note.state),
    formatMoney(note.net, note.currency), formatMoney(note.tax, note.currency), formatMoney(note.gross, note.currency),
    note.reason, label('settlements', note.settlement), creditNoteLinks(note),
    mailBadge(state.creditNoteMail[note.creditNoteId]),
  ]);
  $('credit-notes-body').replaceChildren(table(
    [t('creditNoteNumber'), t('creditNoteKind'), t('state'), t('netAmount'), t('taxAmount'), t('grossAmount'),
      t('creditNoteReason'), t('creditSettlement'), t('einvoice'), t('mail')], rows, t('noCreditNotes')));
  const creditable = CREDITABLE.includes(invoice.status);
  show('credit-form', creditable);
  show('credit-not-possible', !creditable);
  if (!creditable) show('credit-confirm', false);
}

// --- e-mail of the documents: one invoice's sending per recipient, the undelivered ones, a resend ---------

function mailPath(documentId) {
  return `/operator/documents/${encodeURIComponent(documentId)}/mail`;
}

/** GET /operator/mail/undelivered; null if it failed (the rest of the page still loads), 401/403 thrown. */
async function undeliveredDocuments() {
  try {
    return (await call('GET', '/operator/mail/undelivered')).documents;
  } catch (error) {
    if (error instanceof ApiError && [401, 403].includes(error.status)) throw error;
    return null;
  }
}

/** A document's e-mail status, or {failed: true}; 401/403 thrown. */
async function mailStatus(documentId) {
  try {
    return await call('GET', mailPath(documentId));
  } catch (error) {
    if (error instanceof ApiError && [401, 403].includes(error.status)) throw error;
    return {failed: true};
  }
}

/** The open invoice's e-mail, and each of its credit notes'. */
async function loadMail() {
  const invoice = state.selected;
  if (!invoice) return;
  const notes = state.creditNotes;
  const [mail, ...noteMail] = await Promise.all([mailStatus(invoice.invoiceId),
    ...notes.map((note) => mailStatus(note.creditNoteId))]);
  if (state.selected?.invoiceId !== invoice.invoiceId) return; // another invoice was opened meanwhile
  state.mail = mail;
  state.creditNoteMail = Object.fromEntries(notes.map((note, index) => [note.creditNoteId, noteMail[index]]));
}

function mailBadge(status) {
  if (!status || status.failed) return '–';
  return el('span', {className: `badge mail-${status.state}`, 'data-mail-state': status.state,
    title: status.reason || null}, label('mailStates', status.state));
}

function renderMail() {
  const status = state.mail;
  const body = $('invoice-mail-body');
  if (!status) {
    body.replaceChildren(el('p', {className: 'placeholder'}, t('loading')));
    return;
  }
  if (status.failed) {
    body.replaceChildren(el('p', {className: 'form-error'}, t('mailLoadFailed')));
    return;
  }
  if (status.state === 'not_sent') {
    body.replaceChildren(el('p', {className: 'mail-state'}, mailBadge(status), el('span', {}, t('mailNeverSent'))));
    return;
  }
  const rows = status.deliveries.map((delivery) => [
    delivery.recipient,
    el('span', {'data-delivery-state': delivery.state}, label('deliveryStates', delivery.state)),
    formatDateTime(delivery.sentAt),
    [delivery.reason || '', delivery.possibleDuplicate ? ` (${t('possibleDuplicate')})` : ''].join('').trim() || '–',
    delivery.messageId ? el('code', {}, delivery.messageId) : '–',
  ]);
  body.replaceChildren(
    el('p', {className: 'mail-state'}, mailBadge(status), el('span', {}, t('mailSending', {sending: status.sending})),
      status.reason ? el('span', {className: 'muted'}, status.reason) : null),
    table([t('recipient'), t('state'), t('sentAt'), t('mailReason'), t('messageId')], rows, ''));
}

function resetResendForm() {
  $('resend-to').value = '';
  showMessage('resend-error', '');
  show('resend-result', false);
}

function showMessage(id, message) {
  $(id).textContent = message || '';
  show(id, Boolean(message));
}

/** POST .../resend: {documentId, sending, recipients}; to the account's recipients unless `to` names some. */
function resend(documentId, to) {
  return call('POST', `/operator/documents/${encodeURIComponent(documentId)}/resend`, to.length ? {to} : {});
}

/** 401 and 403 are the session's; a 409 (bounced address, no e-invoice yet) or 400 is shown with its reason. */
function resendError(error, where) {
  if (error instanceof ApiError && [401, 403].includes(error.status)) {
    handleApiError(error);
    return;
  }
  showMessage(where, error instanceof ApiError && error.status && error.status < 500 && error.message
    ? error.message : t('resendFailed'));
}

/** Ask until the worker has done sending `sending` of the document (or the time is up); its status or null. */
async function waitForSending(documentId, sending) {
  const deadline = Date.now() + MAIL_POLL_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, MAIL_POLL_MS));
    if (!state.session) return null;
    const status = await mailStatus(documentId).catch(() => ({failed: true}));
    if (!status.failed && status.sending >= sending && status.state !== 'sending') return status;
  }
  return null;
}

/** After a resend was queued: show its outcome where the document is shown, once the worker has sent it. */
async function followResend(documentId, sending) {
  const status = await waitForSending(documentId, sending);
  if (status && state.selected?.invoiceId === documentId) {
    state.mail = status;
    renderMail();
  } else if (status && state.creditNoteMail[documentId] !== undefined) {
    state.creditNoteMail[documentId] = status;
    renderInvoiceDetail();
  }
  const undelivered = await undeliveredDocuments().catch(() => null);
  if (undelivered) {
    state.undelivered = undelivered;
    renderUndelivered();
  }
}

async function onResendInvoice(event) {
  event.preventDefault();
  const invoice = state.selected;
  if (!invoice) return;
  showMessage('resend-error', '');
  show('resend-result', false);
  const button = $('resend-button');
  button.disabled = true;
  try {
    const queued = await resend(invoice.invoiceId, parseAddresses($('resend-to').value));
    $('resend-to').value = '';
    showMessage('resend-result', t('resendQueued', {document: invoice.number || invoice.invoiceId,
      sending: queued.sending, recipients: queued.recipients.join(', ')}));
    state.mail = {...state.mail, state: 'sending', sending: queued.sending, reason: null, deliveries: []};
    renderMail();
    followResend(invoice.invoiceId, queued.sending);
  } catch (error) {
    resendError(error, 'resend-error');
  } finally {
    button.disabled = false;
  }
}

/** The invoice a document belongs to: itself, or the one a credit note (cn_<period>_<account>_<n>) is of. */
function invoiceOf(documentId) {
  const invoiceId = documentId.startsWith('cn_') ? `inv_${documentId.slice(3).replace(/_\d+$/, '')}` : documentId;
  return state.invoices.find((invoice) => invoice.invoiceId === invoiceId);
}

function renderUndelivered() {
  const body = $('undelivered-body');
  if (state.undelivered === null) {
    body.replaceChildren(el('p', {className: 'form-error'}, t('mailLoadFailed')));
    return;
  }
  const rows = state.undelivered.map((item) => {
    const invoice = invoiceOf(item.documentId);
    const input = el('input', {type: 'text', autocomplete: 'off', spellcheck: 'false',
      'aria-label': t('resendToLabel', {document: item.documentId})});
    const button = el('button', {type: 'button', className: 'secondary',
      'aria-label': t('resendLabel', {document: item.documentId}),
      onclick: () => resendUndelivered(item, input, button)}, t('resend'));
    return [
      invoice
        ? el('button', {type: 'button', className: 'link-button', onclick: () => openInvoice(invoice),
          'aria-label': t('openInvoiceLabel', {invoice: invoice.invoiceId})}, item.documentId)
        : item.documentId,
      item.accountId, String(item.sending), item.reason || item.text,
      el('span', {className: 'resend-inline'}, input, button),
    ];
  });
  body.replaceChildren(table([t('document'), t('account'), t('sendingColumn'), t('mailReason'), t('resend')], rows,
    t('noUndelivered')));
}

async function resendUndelivered(item, input, button) {
  showMessage('undelivered-error', '');
  show('undelivered-result', false);
  button.disabled = true;
  try {
    const queued = await resend(item.documentId, parseAddresses(input.value));
    input.value = '';
    showMessage('undelivered-result', t('resendQueued', {document: item.documentId, sending: queued.sending,
      recipients: queued.recipients.join(', ')}));
    $('undelivered-result').className = 'notice success';
    followResend(item.documentId, queued.sending);
  } catch (error) {
    resendError(error, 'undelivered-error');
  } finally {
    button.disabled = false;
  }
}

function creditNoteLinks(note) {
  const path = (format) => `/operator/credit-notes/${encodeURIComponent(note.creditNoteId)}/einvoice?format=${format}`;
  const links = [];
  if (note.einvoice?.xrechnung) {
    links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'xrechnung',
      onclick: () => downloadFile(path('xrechnung'), note.creditNoteId)}, t('einvoiceXml')));
  }
  if (note.einvoice?.zugferd) {
    links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'zugferd',
      onclick: () => downloadFile(path('zugferd'), note.creditNoteId)}, t('einvoicePdf')));
  }
  return links.length ? el('span', {className: 'links'}, links) : '–';
}

/** The invoice's lines a credit note can take something back from: those with a positive net. */
function creditableLines(invoice) {
  return (invoice.lines ?? []).filter((line) => line.net && !line.net.startsWith('-') && line.net !== '0.00');
}

function resetCreditForm() {
  const invoice = state.selected;
  if (!invoice) return;
  state.proposal = null;
  show('credit-confirm', false);
  show('credit-form-error', false);
  $('credit-reason').value = '';
  $('credit-scope-lines').checked = true;
  const paid = invoice.status === 'paid';
  $('credit-settlement').replaceChildren(...(paid
    ? [el('option', {value: ''}, t('settlementDefaultPaid')),
      ...PAID_SETTLEMENTS.map((value) => el('option', {value}, label('settlements', value)))]
    : []));
  show('credit-settlement-field', paid);
  $('credit-settlement-hint').textContent = t(paid ? 'settlementHintPaid' : 'settlementHintOpen');
  const rows = creditableLines(invoice).map((line) => [
    line.line, line.description, formatMoney(line.net, invoice.currency),
    el('input', {type: 'text', inputmode: 'decimal', className: 'amount-input', 'data-line': line.line,
      'aria-label': t('creditAmountLabel', {line: line.line})}),
  ]);
  $('credit-lines').replaceChildren(table(
    [t('invoiceLine'), t('description'), t('lineNet'), t('creditAmount')], rows, t('creditNotPossible')));
  showCreditScope();
}

function showCreditScope() {
  show('credit-lines', $('credit-scope-lines').checked);
  forgetProposal();
}

/** A changed form no longer matches the preview shown: it must be previewed again. */
function forgetProposal() {
  state.proposal = null;
  show('credit-confirm', false);
}

/** "5", "5,5" or "5.50" as "5.50"; null for an empty field; undefined for anything else. */
function parseAmount(text) {
  const value = text.trim().replace(',', '.');
  if (!value) return null;
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(value);
  if (!match) return undefined;
  return `${match[1]}.${(match[2] ?? '').padEnd(2, '0')}`;
}

/** The request the form asks for, or a message saying what is missing. */
function creditRequest() {
  const reason = $('credit-reason').value.trim();
  if (!reason) return {problem: t('creditReasonMissing')};
  const body = {reason};
  const settlement = $('credit-settlement').value;
  if (state.selected.status === 'paid' && settlement) body.settlement = settlement;
  if ($('credit-scope-full').checked) return {body: {...body, full: true}};
  const lines = {};
  for (const input of $('credit-lines').querySelectorAll('input[data-line]')) {
    const amount = parseAmount(input.value);
    if (amount === undefined) {
      return {problem: t('creditAmountInvalid', {line: input.dataset.line, amount: input.value})};
    }
    if (amount !== null && amount !== '0.00') lines[input.dataset.line] = amount;
  }
  if (!Object.keys(lines).length) return {problem: t('creditNothingChosen')};
  return {body: {...body, lines}};
}

function showCreditError(id, message) {
  $(id).textContent = message || '';
  show(id, Boolean(message));
}

/** 401 and 403 are the session's; anything else (409: not possible so, with why) is shown where it happened. */
function creditError(error, where) {
  if (error instanceof ApiError && [401, 403].includes(error.status)) {
    handleApiError(error);
    return;
  }
  showCreditError(where, error.message || t('creditFailed'));
}

async function onPreviewCredit(event) {
  event.preventDefault();
  forgetProposal();
  showCreditError('credit-form-error', '');
  show('credit-result', false);
  const {body, problem} = creditRequest();
  if (problem) {
    showCreditError('credit-form-error', problem);
    return;
  }
  const invoiceId = state.selected.invoiceId;
  const button = $('credit-preview');
  button.disabled = true;
  try {
    const preview = await call('POST', `${creditNotesPath(invoiceId)}/preview`, body);
    state.proposal = {invoiceId, body, preview};
    renderProposal();
  } catch (error) {
    creditError(error, 'credit-form-error');
  } finally {
    button.disabled = false;
  }
}

function renderProposal() {
  const {preview} = state.proposal;
  const money = (amount) => formatMoney(amount, preview.currency);
  const figure = (label, value) => el('div', {className: 'figure'}, el('dt', {}, label), el('dd', {}, value));
  $('credit-confirm-body').replaceChildren(
    el('p', {}, el('strong', {}, creditNoteKind(preview.full)), ` – ${label('settlements', preview.settlement)}`),
    el('dl', {className: 'figures'}, figure(t('netAmount'), money(preview.net)),
      figure(t('taxAmount'), money(preview.tax)), figure(t('grossAmount'), money(preview.gross))),
    table([t('invoiceLine'), t('description'), t('period'), t('netAmount'), t('taxAmount')],
      preview.lines.map((line) => [line.line, line.description, line.period, money(line.net), money(line.tax)]), ''));
  showCreditError('credit-confirm-error', '');
  show('credit-confirm', true);
  $('credit-confirm-button').focus();
}

async function onConfirmCredit() {
  const proposal = state.proposal;
  if (!proposal) return;
  const button = $('credit-confirm-button');
  button.disabled = true;
  try {
    const note = await call('POST', creditNotesPath(proposal.invoiceId), proposal.body);
    resetCreditForm();
    const result = $('credit-result');
    result.textContent = t('creditIssued', {kind: creditNoteKind(note.full), number: note.number || note.creditNoteId});
    result.className = 'notice success';
    result.hidden = false;
    await load();
  } catch (error) {
    creditError(error, 'credit-confirm-error');
  } finally {
    button.disabled = false;
  }
}

function renderAudit() {
  const rows = state.audit.map((entry) => {
    const fields = [...new Set([...Object.keys(entry.before), ...Object.keys(entry.after)])].sort();
    const changes = fields.map((field) => `${field}: ${entry.before[field] ?? ''} → ${entry.after[field] ?? ''}`);
    return [entry.atIso.replace('T', ' ').replace('+00:00', ''), entry.actor, entry.action, entry.accountId || '',
      changes.join('; '), entry.reason || ''];
  });
  $('audit-body').replaceChildren(table(
    [t('when'), t('who'), t('action'), t('account'), t('changes'), t('reason')], rows, t('noAudit')));
}

// --- the account form ---------------------------------------------------------------------------

const FORM_FIELDS = ['id', 'name', 'email', 'costScope', 'baseFee', 'language', 'country', 'line1', 'postalCode',
  'city', 'reason'];

function resetForm() {
  state.editing = null;
  state.editingEmails = [];
  for (const field of FORM_FIELDS) $(`f-${field}`).value = '';
  $('f-invoiceEmails').value = '';
  $('f-allowUndeliverable').checked = false;
  show('f-allowUndeliverable-field', false);
  renderInvoiceEmailsHint([]);
  $('f-id').disabled = false;
  $('account-form-heading').textContent = t('accountForm');
  $('account-submit').textContent = t('create');
  show('account-form-error', false);
}

function editAccount(account) {
  resetForm();
  state.editing = account.accountId;
  const values = {id: account.accountId, name: account.name, email: account.email, costScope: account.costScope,
    baseFee: account.baseFee, language: account.language, country: account.country,
    line1: account.address?.line1, postalCode: account.address?.postalCode, city: account.address?.city};
  for (const [field, value] of Object.entries(values)) $(`f-${field}`).value = value ?? '';
  state.editingEmails = account.invoiceEmails ?? [];
  $('f-invoiceEmails').value = state.editingEmails.join('\n');
  const undeliverable = (account.undeliverableEmails ?? []);
  renderInvoiceEmailsHint(undeliverable);
  show('f-allowUndeliverable-field', undeliverable.length > 0);
  $('f-id').disabled = true;
  $('account-form-heading').textContent = t('accountFormEdit', {id: account.accountId});
  $('account-submit').textContent = t('saveChanges');
  $('f-name').focus();
}

/** Under the invoice recipients: whom they default to, and which addresses are undeliverable now. */
function renderInvoiceEmailsHint(undeliverable) {
  const parts = [t('invoiceEmailsDefault')];
  if (undeliverable.length) {
    parts.push(' ', el('strong', {}, t('undeliverableNow')), ' ', ...undeliverable.flatMap((address) => [
      el('span', {className: 'address', 'data-undeliverable': address}, address), ' ',
      el('span', {className: 'badge failed'}, t('undeliverable')), ' ']));
  }
  $('f-invoiceEmails-hint').replaceChildren(...parts);
}

/** The same addresses in the same order (the API keeps them lower-cased, in the order given). */
function sameAddresses(a, b) {
  return a.length === b.length && a.every((address, index) => address.toLowerCase() === b[index].toLowerCase());
}

async function onSaveAccount(event) {
  event.preventDefault();
  const value = (field) => $(`f-${field}`).value.trim();
  const body = {};
  for (const field of ['name', 'email', 'costScope', 'baseFee', 'language', 'country', 'reason']) {
    if (value(field)) body[field] = value(field);
  }
  if (value('line1') || value('postalCode') || value('city')) {
    body.address = {line1: value('line1'), postalCode: value('postalCode'), city: value('city')};
  }
  if (!state.editing && value('id')) body.id = value('id');
  // Given, the recipients clear the undeliverable ones: sent only when changed, or when that is what is asked.
  const invoiceEmails = parseAddresses($('f-invoiceEmails').value);
  const allow = state.editing && $('f-allowUndeliverable').checked;
  if (invoiceEmails.length && (!state.editing || allow || !sameAddresses(invoiceEmails, state.editingEmails))) {
    body.invoiceEmails = invoiceEmails;
  }
  show('account-form-error', false);
  show('account-form-saved', false);
  try {
    const saved = state.editing
      ? await call('PATCH', `/operator/accounts/${encodeURIComponent(state.editing)}`, body)
      : await call('POST', '/operator/accounts', body);
    resetForm();
    $('account-form-saved').textContent = t('accountSaved', {id: saved.accountId});
    show('account-form-saved', true);
    await load();
  } catch (error) {
    if (error instanceof ApiError && [400, 409].includes(error.status)) {
      $('account-form-error').textContent = error.message;
      show('account-form-error', true);
    } else {
      handleApiError(error);
    }
  }
}

async function inviteAdmin(account) {
  const email = window.prompt(t('invitePrompt', {id: account.accountId}));
  if (!email) return;
  const notice = $('accounts-status');
  try {
    const invited = await call('POST', `/operator/accounts/${encodeURIComponent(account.accountId)}/invite`, {email});
    notice.textContent = invited.temporaryPassword
      ? t('invitedPassword', {email: invited.email, id: account.accountId, password: invited.temporaryPassword})
      : t('invited', {email: invited.email, id: account.accountId});
    notice.className = 'notice success';
    await load();
  } catch (error) {
    if (error instanceof ApiError && [400, 404, 409].includes(error.status)) {
      notice.textContent = error.message;
      notice.className = 'notice error';
    } else {
      handleApiError(error);
      return;
    }
  }
  notice.hidden = false;
}

async function toggleAccount(account) {
  try {
    if (account.disabled) {
      await call('POST', `/operator/accounts/${encodeURIComponent(account.accountId)}/enable`, {});
    } else {
      const reason = window.prompt(t('disableReasonPrompt', {id: account.accountId}));
      if (!reason) return;
      await call('POST', `/operator/accounts/${encodeURIComponent(account.accountId)}/disable`, {reason});
    }
    await load();
  } catch (error) {
    handleApiError(error);
  }
}

// --- start --------------------------------------------------------------------------------------

function applyLanguage(code) {
  setLanguage(code);
  $('language').value = currentLanguage();
  translateDocument();
  if (state.editing === null) resetForm();
  if (state.session) signedIn(state.session);
  if (state.run) render();
  if (state.selected) resetCreditForm();
}

async function start() {
  setUpLanguage($('language'), config.language, applyLanguage);
  $('sign-in-form').addEventListener('submit', onPasswordSignIn);
  $('hosted-sign-in-button').addEventListener('click', () => startHostedSignIn(config.cognito, pageUrl));
  $('sign-out').addEventListener('click', signOut);
  $('retry').addEventListener('click', load);
  $('account-form').addEventListener('submit', onSaveAccount);
  $('account-cancel').addEventListener('click', resetForm);
  $('new-account').addEventListener('click', () => {
    resetForm();
    $('f-name').focus();
  });
  $('credit-form').addEventListener('submit', onPreviewCredit);
  $('credit-form').addEventListener('change', forgetProposal);
  $('credit-form').addEventListener('input', forgetProposal);
  for (const id of ['credit-scope-lines', 'credit-scope-full']) $(id).addEventListener('change', showCreditScope);
  $('credit-confirm-button').addEventListener('click', onConfirmCredit);
  $('credit-confirm-cancel').addEventListener('click', forgetProposal);
  $('resend-form').addEventListener('submit', onResendInvoice);
  $('invoice-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  if (config.authMode === 'hosted-ui') {
    try {
      await completeHostedSignIn(config.cognito, pageUrl);
    } catch (error) {
      showSignIn(t('signInFailed'));
      return;
    }
  }
  const session = currentSession();
  if (!session) {
    showSignIn();
    return;
  }
  signedIn(session);
  await load();
}

start();
