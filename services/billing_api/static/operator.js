// The operator page: every customer account (create, edit, disable), the last month's run, failed
// payments with a retry, invoices across accounts and the audit log. Plain DOM; texts via textContent.

import {el, setUpLanguage} from './page.js';
import {ApiError} from './api.js';
import {
  SignInError, buildLogoutUrl, clearSession, completeHostedSignIn, currentSession, signInWithPassword,
  startHostedSignIn,
} from './auth.js';
import {
  addTexts, currentLanguage, formatDateTime, formatMoney, setLanguage, statusLabel, statusTone, t, translateDocument,
} from './i18n.js';
import {OPERATOR_TEXTS} from './operator-texts.js';

addTexts(OPERATOR_TEXTS);

const STATUSES = ['payment_failed', 'action_required', 'open', 'paid', 'void', 'uncollectible', 'draft', 'pending'];
const RUN_STATES = {waiting_for_final_costs: 'runWaiting', enqueuing: 'runEnqueuing', enqueued: 'runEnqueued'};
const config = JSON.parse(document.getElementById('page-config').textContent);
const pageUrl = window.location.origin + window.location.pathname;
const $ = (id) => document.getElementById(id);

const state = {session: null, accounts: [], run: null, failed: [], invoices: [], audit: [], editing: null};

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
    const [accounts, run, failed, action, invoices, audit] = await Promise.all([
      call('GET', '/operator/accounts'),
      call('GET', `/operator/runs/${previousMonth()}`),
      call('GET', '/operator/invoices?status=payment_failed'),
      call('GET', '/operator/invoices?status=action_required'),
      call('GET', `/operator/invoices${query.toString() ? `?${query}` : ''}`),
      call('GET', '/operator/audit?limit=50'),
    ]);
    Object.assign(state, {
      accounts: accounts.accounts, run, failed: [...failed.invoices, ...action.invoices], invoices: invoices.invoices,
      audit: audit.entries,
    });
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
  renderAccounts();
  renderInvoices();
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
  $('run-body').replaceChildren(
    el('p', {className: 'run-state'}, t(done ? 'runDone' : RUN_STATES[run.status] || run.status)),
    el('h3', {}, t('invoicesByStatus')),
    el('ul', {}, Object.entries(invoicesByStatus).map(([status, count]) => el('li', {}, badge(status), ` ${count}`))),
    run.skippedAccounts.length ? el('h3', {}, t('skippedAccounts')) : null,
    run.skippedAccounts.length
      ? el('ul', {}, run.skippedAccounts.map((skipped) => el('li', {}, `${skipped.accountId}: ${skipped.reason}`)))
      : null,
  );
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
    account.accountId, account.name || '', account.email || '', account.costScope || t('wholePayer'),
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

function renderInvoices() {
  const select = $('filter-status');
  const chosen = select.value;
  select.replaceChildren(el('option', {value: ''}, t('allStatuses')),
    ...STATUSES.map((status) => el('option', {value: status}, statusLabel(status))));
  select.value = chosen;
  const rows = state.invoices.map((invoice) => [
    (invoice.period?.start || '').slice(0, 7), invoice.invoiceId, invoice.accountId, badge(invoice.status),
    formatMoney(invoice.netAmount, invoice.currency), formatMoney(invoice.taxAmount, invoice.currency),
    formatMoney(invoice.amount, invoice.currency), String(invoice.attemptCount), einvoiceLinks(invoice),
  ]);
  $('all-invoices-body').replaceChildren(table(
    [t('period'), t('invoiceId'), t('account'), t('status'), t('netAmount'), t('taxAmount'), t('amount'),
      t('attempts'), t('einvoice')], rows, t('noInvoicesFound')));
}

// The e-invoice files need the operator's token: fetched, then saved from a Blob.
async function downloadEInvoice(invoiceId, format) {
  try {
    const response = await fetch(
      `${config.apiBase}/operator/invoices/${encodeURIComponent(invoiceId)}/einvoice?format=${format}`,
      {headers: {Authorization: `Bearer ${state.session?.accessToken ?? ''}`}, cache: 'no-store'});
    if (!response.ok) throw new ApiError(response.status);
    const name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '')?.[1] || invoiceId;
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
  for (const field of FORM_FIELDS) $(`f-${field}`).value = '';
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
  $('f-id').disabled = true;
  $('account-form-heading').textContent = t('accountFormEdit', {id: account.accountId});
  $('account-submit').textContent = t('saveChanges');
  $('f-name').focus();
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
