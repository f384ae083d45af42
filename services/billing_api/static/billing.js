// The Billing tab: sign-in, payment method (Stripe Payment Element), current costs, invoice
// history (with each invoice's credit notes), the AWS services breakdown and who gets the invoices by e-mail.
// Plain DOM; every text goes in through textContent.

import {el, setUpLanguage} from './page.js';
import {ApiError, billingApi} from './api.js';
import {
  SignInError, clearSession, completeHostedSignIn, currentSession, buildLogoutUrl, signInWithPassword,
  startHostedSignIn,
} from './auth.js';
import {
  correctionLabel, creditNoteKind, currentLanguage, formatDate, formatDateTime, formatMoney, formatPeriod,
  isUndeliverable, parseAddresses, setLanguage, statusLabel, statusTone, t, translateDocument,
} from './i18n.js';

const CONFIRM_POLL_MS = 1000;
const CONFIRM_TIMEOUT_MS = 60_000;
const CURRENT = 'current';
const MAX_INVOICE_RECIPIENTS = 10; // what PUT /billing/invoice-emails takes at most
const BRANDS = {visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover',
  diners: 'Diners Club', jcb: 'JCB', unionpay: 'UnionPay', cartes_bancaires: 'Cartes Bancaires'};

const config = JSON.parse(document.getElementById('page-config').textContent);
const pageUrl = window.location.origin + window.location.pathname;
const $ = (id) => document.getElementById(id);

const state = {
  session: null,
  data: null, // the last GET /billing answer, with every page of invoices loaded so far
  breakdown: null, // CURRENT or an invoiceId
  payment: null, // {stripe, elements, element} while the Payment Element is open
  polling: null,
};

const api = billingApi(config.apiBase, () => state.session?.accessToken ?? '');

function show(id, visible = true) {
  $(id).hidden = !visible;
}

function setPageStatus(text, tone = '') {
  const status = $('page-status');
  status.textContent = text || '';
  status.className = `notice ${tone}`.trim();
  status.hidden = !text;
}

function showOnly(...ids) {
  for (const id of ['sign-in', 'no-access', 'load-error', 'billing']) show(id, ids.includes(id));
}

// --- sign-in ----------------------------------------------------------------------------------

function showSignIn(message = '') {
  state.session = null;
  state.data = null;
  showOnly('sign-in');
  show('sign-out', false);
  show('signed-in-as', false);
  const local = config.authMode === 'local';
  show('sign-in-form', local);
  show('hosted-sign-in', !local);
  const error = $('sign-in-error');
  error.textContent = message;
  error.hidden = !message;
  setPageStatus('');
  if (local) $('username').focus();
}

function signedIn(session) {
  state.session = session;
  $('signed-in-as').textContent = t('signedInAs', {name: session.username});
  show('signed-in-as', Boolean(session.username));
  show('sign-out', true);
}

async function onPasswordSignIn(event) {
  event.preventDefault();
  const button = event.submitter || $('sign-in-form').querySelector('button');
  const username = $('username').value.trim();
  const password = $('password').value;
  if (!username || !password) {
    showSignIn(t('wrongPassword'));
    return;
  }
  button.disabled = true;
  setPageStatus(t('signingIn'));
  try {
    const session = await signInWithPassword(config.cognito, username, password);
    $('password').value = '';
    signedIn(session);
    await loadBilling();
  } catch (error) {
    showSignIn(t(error instanceof SignInError ? error.code : 'signInFailed'));
    $('password').select();
  } finally {
    button.disabled = false;
  }
}

async function onHostedSignIn() {
  if (!config.cognito.domain) {
    showSignIn(t('signInNotConfigured'));
    return;
  }
  setPageStatus(t('signInRedirecting'));
  await startHostedSignIn(config.cognito, pageUrl);
}

function signOut() {
  stopPolling();
  closePaymentForm();
  closeRecipientsForm();
  show('invoice-recipients-saved', false);
  clearSession();
  if (config.authMode === 'hosted-ui' && config.cognito.domain) {
    window.location.assign(buildLogoutUrl(config.cognito, pageUrl));
    return;
  }
  $('username').value = '';
  showSignIn();
}

// --- loading ----------------------------------------------------------------------------------

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

async function loadBilling() {
  showOnly('billing');
  $('billing').setAttribute('aria-busy', 'true');
  if (!state.data) renderLoading();
  setPageStatus(t('loading'));
  try {
    const data = await api.billing();
    state.data = data;
    const known = state.breakdown === CURRENT
      ? Boolean(data.currentCosts)
      : data.invoices.some((invoice) => invoice.invoiceId === state.breakdown);
    if (!known) state.breakdown = data.invoices[0]?.invoiceId ?? (data.currentCosts ? CURRENT : null);
    render();
    setPageStatus('');
  } catch (error) {
    handleApiError(error);
  } finally {
    $('billing').setAttribute('aria-busy', 'false');
  }
}

async function loadMoreInvoices() {
  const button = $('load-more');
  button.disabled = true;
  try {
    const page = await api.billing(state.data.nextCursor);
    state.data.invoices.push(...page.invoices);
    state.data.nextCursor = page.nextCursor;
    render();
  } catch (error) {
    handleApiError(error);
  } finally {
    button.disabled = false;
  }
}

function renderLoading() {
  for (const id of ['payment-method-status', 'current-costs-body', 'invoices-body', 'breakdown-body',
    'invoice-recipients-body']) {
    $(id).replaceChildren(el('p', {className: 'placeholder'}, t('loading')));
  }
}

function render() {
  if (!state.data) return;
  renderPaymentProblems();
  renderPaymentMethod();
  renderCurrentCosts();
  renderInvoices();
  renderBreakdownChoices();
  renderBreakdown();
  renderInvoiceRecipients();
}

// --- payment method ---------------------------------------------------------------------------

function paymentMethodLabel(method) {
  if (method.type === 'sepa_debit') return `${t('sepaDebit')} •••• ${method.last4 ?? ''}`.trim();
  const brand = BRANDS[method.brand] ?? (method.brand ? method.brand[0].toUpperCase() + method.brand.slice(1) : t('card'));
  return `${brand} •••• ${method.last4 ?? ''}`.trim();
}

function renderPaymentMethod() {
  const method = state.data.paymentMethod ?? {status: 'none'};
  const box = $('payment-method-status');
  const button = $('add-payment-method');
  button.dataset.i18n = method.status === 'active' ? 'changePaymentMethod' : 'addPaymentMethod';
  button.textContent = t(button.dataset.i18n);
  if (method.status === 'active') {
    box.replaceChildren(
      el('p', {className: 'state ok'}, el('span', {className: 'dot', 'aria-hidden': 'true'}), t('paymentMethodStored')),
      el('p', {className: 'payment-method-label'}, paymentMethodLabel(method)),
    );
  } else {
    box.replaceChildren(
      el('p', {className: 'state none'}, el('span', {className: 'dot', 'aria-hidden': 'true'}), t('noPaymentMethod')),
      el('p', {className: 'muted'}, t('noPaymentMethodHint')),
    );
  }
}

let stripeScript = null;

/** Load Stripe.js once (from js.stripe.com, or the emulator's stand-in on the local stack). */
function loadStripeJs() {
  if (window.Stripe) return Promise.resolve(window.Stripe);
  stripeScript ??= new Promise((resolve, reject) => {
    const script = el('script', {src: config.stripeJsUrl});
    script.addEventListener('load', () => (window.Stripe ? resolve(window.Stripe) : reject(new Error('no Stripe'))));
    script.addEventListener('error', () => {
      stripeScript = null;
      script.remove();
      reject(new Error('Stripe.js failed to load'));
    });
    document.head.append(script);
  });
  return stripeScript;
}

function showPaymentError(message) {
  $('payment-error').textContent = message || '';
  show('payment-error', Boolean(message));
}

async function openPaymentForm() {
  const button = $('add-payment-method');
  button.disabled = true;
  show('payment-success', false);
  showPaymentError('');
  try {
    const setup = await api.createSetupIntent();
    let Stripe;
    try {
      Stripe = await loadStripeJs();
    } catch (error) {
      showPaymentError(t('stripeUnavailable'));
      return;
    }
    const stripe = Stripe(setup.publishableKey);
    const elements = stripe.elements({clientSecret: setup.clientSecret, locale: currentLanguage()});
    const element = elements.create('payment');
    element.on('ready', () => element.focus());
    element.mount('#payment-element');
    state.payment = {stripe, elements, element};
    show('payment-form', true);
    show('add-payment-method', false);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) handleApiError(error);
    else showPaymentError(t('setupFailed'));
  } finally {
    button.disabled = false;
  }
}

function closePaymentForm() {
  state.payment?.element.unmount();
  state.payment = null;
  showPaymentError('');
  show('payment-form', false);
  show('add-payment-method', true);
}

async function onSavePaymentMethod(event) {
  event.preventDefault();
  if (!state.payment) return;
  const save = $('save-payment-method');
  save.disabled = true;
  save.textContent = t('saving');
  showPaymentError('');
  try {
    const {stripe, elements} = state.payment;
    const result = await stripe.confirmSetup({elements, redirect: 'if_required', confirmParams: {return_url: pageUrl}});
    if (result.error) {
      showPaymentError(result.error.message || t('setupFailed'));
      return;
    }
    const before = state.data.paymentMethod;
    // The new method's id tells it apart even from a card with the same last four digits.
    const saved = result.setupIntent?.payment_method;
    closePaymentForm();
    paymentMethodAdded(before, typeof saved === 'string' ? saved : saved?.id);
  } finally {
    save.disabled = false;
    save.textContent = t('save');
  }
}

function paymentMethodAdded(before, savedId = null) {
  const notice = $('payment-success');
  notice.replaceChildren(el('strong', {}, t('paymentMethodAdded')), ' ',
    el('span', {id: 'payment-confirming'}, t('waitingForConfirmation')));
  show('payment-success', true);
  waitForWebhook(before, savedId);
}

/** Poll until the `setup_intent.succeeded` webhook has made the new method the default. */
function waitForWebhook(before, savedId = null) {
  stopPolling();
  const deadline = Date.now() + CONFIRM_TIMEOUT_MS;
  const changed = (method) => method?.status === 'active' && (savedId ? method.id === savedId
    : before?.status !== 'active' || method.id !== before.id);
  const poll = async () => {
    try {
      const data = await api.billing();
      if (changed(data.paymentMethod)) {
        // The new method may have paid a failed invoice already: show the fresh state of everything.
        state.data = {...data, invoices: data.invoices};
        state.polling = null;
        render();
        $('payment-confirming')?.remove();
        return;
      }
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        handleApiError(error);
        return;
      }
    }
    if (Date.now() > deadline) {
      state.polling = null;
      const waiting = $('payment-confirming');
      if (waiting) waiting.textContent = t('confirmationSlow');
      return;
    }
    state.polling = setTimeout(poll, CONFIRM_POLL_MS);
  };
  state.polling = setTimeout(poll, CONFIRM_POLL_MS);
}

function stopPolling() {
  if (state.polling) clearTimeout(state.polling);
  state.polling = null;
}

// --- a failed payment: the banner with "pay now" --------------------------------------------

function renderPaymentProblems() {
  const problems = state.data.invoices.filter((invoice) => ['payment_failed', 'action_required'].includes(invoice.status));
  $('payment-problems').replaceChildren(...problems.map((invoice) => {
    const period = formatPeriod(invoice.period);
    const action = invoice.status === 'action_required';
    return el('div', {className: `notice payment-problem${action ? ' action' : ''}`, role: 'alert',
      'data-invoice-id': invoice.invoiceId},
    el('p', {}, t(action ? 'actionRequiredBanner' : 'paymentFailedBanner', {period})),
    el('button', {type: 'button', 'aria-label': t('payNowLabel', {period}),
      onclick: (event) => payNow(invoice, event.target)}, t('payNow')));
  }));
}

async function payNow(invoice, button) {
  button.disabled = true;
  const period = formatPeriod(invoice.period);
  try {
    const outcome = await api.payInvoice(invoice.invoiceId);
    if (outcome.actionUrl) {
      window.location.assign(outcome.actionUrl); // Stripe's hosted page runs the authentication
      return;
    }
    const declined = outcome.declined === 'no_payment_method' ? t('payNowNoPaymentMethod') : t('payNowDeclined');
    setPageStatus(outcome.paid ? t('payNowPaid', {period}) : declined, outcome.paid ? 'success' : 'error');
    await loadBilling();
    setPageStatus(outcome.paid ? t('payNowPaid', {period}) : declined, outcome.paid ? 'success' : 'error');
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) handleApiError(error);
    else if (error instanceof ApiError && error.status === 409) {
      // Paid meanwhile (another tab, the automatic retry): show the invoices as they are now.
      await loadBilling();
      setPageStatus(t('payNowAlreadyPaid', {period}), 'success');
    } else if (error instanceof ApiError && error.status === 429) setPageStatus(t('tooManyRequests'), 'error');
    else setPageStatus(t('payNowFailed'), 'error');
  } finally {
    button.disabled = false;
  }
}

// --- current costs ----------------------------------------------------------------------------

function figure(label, value, className = '') {
  return el('div', {className: `figure ${className}`.trim()}, el('dt', {}, label), el('dd', {}, value));
}

function renderCurrentCosts() {
  const costs = state.data.currentCosts;
  const body = $('current-costs-body');
  if (!costs) {
    body.replaceChildren(el('p', {className: 'empty'}, t('noCurrentCosts')));
    return;
  }
  body.replaceChildren(
    el('dl', {className: 'figures'},
      figure(t('monthToDate'), formatMoney(costs.amount, costs.currency), 'primary'),
      figure(t('forecast'), formatMoney(costs.forecastAmount, costs.currency)),
      figure(t('awsCosts'), formatMoney(costs.awsCosts, costs.currency)),
      figure(t('baseFee'), formatMoney(costs.baseFee, costs.currency))),
    // The preview is net: VAT is added on the invoice.
    costs.amountBasis === 'net' ? el('p', {className: 'muted', id: 'preview-basis'}, t('netHint')) : null,
    el('p', {className: 'muted as-of'},
      t('asOf', {time: formatDateTime(costs.asOf)}),
      costs.costsEstimated ? el('span', {className: 'badge estimated', title: t('estimatedHint')}, t('estimated')) : null),
  );
}

// --- invoice history --------------------------------------------------------------------------

function statusBadge(status) {
  return el('span', {className: `badge ${statusTone(status)}`}, statusLabel(status));
}

/** The payment status, and beside it "cancelled" or "corrected" once credit notes took something back. */
function statusBadges(invoice) {
  const hint = balanceHint(invoice);
  if (!invoice.correction && !hint) return statusBadge(invoice.status);
  return el('span', {className: 'badges'}, statusBadge(invoice.status),
    invoice.correction
      ? el('span', {className: 'badge corrected', 'data-correction': invoice.correction},
        correctionLabel(invoice.correction))
      : null,
    hint);
}

/** What Stripe's customer balance did to the invoice: too small to charge, an earlier amount, a credit. */
function balanceHint(invoice) {
  // Amounts are decimal strings ("-11.90"); only their sign is read here, never their value as a number.
  const money = (amount) => formatMoney(amount, invoice.currency);
  const moved = (amount) => Boolean(amount) && !/^-?0(\.0+)?$/.test(amount);
  const applied = invoice.balanceApplied;
  let text = null;
  if (moved(invoice.carriedToBalance)) {
    text = t('balanceCarried');
  } else if (moved(applied) && !applied.startsWith('-')) {
    text = t('balanceCollected', {amount: money(applied), due: money(invoice.amountDue)});
  } else if (moved(applied)) {
    text = t('balanceDeducted', {amount: money(applied.slice(1)), due: money(invoice.amountDue)});
  }
  return text ? el('small', {className: 'balance-hint', 'data-balance': 'true'}, text) : null;
}

/** The invoice's row, and under it a row of its credit notes if it has any. */
function invoiceRows(invoice) {
  return [invoiceRow(invoice), creditNotesRow(invoice)].filter(Boolean);
}

function creditNotesRow(invoice) {
  const notes = invoice.creditNotes ?? [];
  if (!notes.length) return null;
  const items = notes.map((note) => {
    const kind = creditNoteKind(note.kind === 'cancellation');
    const number = note.number ?? '–';
    const links = [];
    if (note.einvoice?.xrechnung) {
      links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'xrechnung',
        'aria-label': t('creditNoteXmlLabel', {kind, number}),
        onclick: () => download(api.creditNoteEInvoice(invoice.invoiceId, note.creditNoteId, 'xrechnung'))},
      t('einvoiceXml')));
    }
    if (note.einvoice?.zugferd) {
      links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'zugferd',
        'aria-label': t('creditNotePdfLabel', {kind, number}),
        onclick: () => download(api.creditNoteEInvoice(invoice.invoiceId, note.creditNoteId, 'zugferd'))},
      t('einvoicePdf')));
    }
    return el('li', {'data-credit-note-id': note.creditNoteId},
      el('strong', {}, kind), el('span', {}, number),
      el('span', {}, t('creditNoteDated', {date: formatDate(note.issuedAt)})),
      el('span', {className: 'amount'}, t('creditNoteGross', {amount: formatMoney(note.gross, note.currency)})),
      links.length ? el('span', {className: 'links'}, links) : null);
  });
  return el('tr', {className: 'credit-notes', 'data-credit-notes-of': invoice.invoiceId},
    el('td', {colspan: '12', 'data-label': t('creditNotes')},
      el('ul', {className: 'credit-note-list', 'aria-label': t('creditNotesOf', {number: invoice.number ?? '–'})},
        items)));
}

function invoiceRow(invoice) {
  const number = invoice.number ?? '–';
  const period = formatPeriod(invoice.period);
  const links = [];
  if (invoice.hostedInvoiceUrl) {
    links.push(el('a', {href: invoice.hostedInvoiceUrl, target: '_blank', rel: 'noopener noreferrer',
      'aria-label': t('viewInvoiceLabel', {number})}, t('viewInvoice')));
  }
  // The e-invoice files need the admin's token: fetched, then saved from a Blob.
  if (invoice.einvoice?.xrechnung) {
    links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'xrechnung',
      'aria-label': t('einvoiceXmlLabel', {number}), onclick: () => downloadEInvoice(invoice, 'xrechnung')},
    t('einvoiceXml')));
  }
  if (invoice.einvoice?.zugferd) {
    links.push(el('button', {type: 'button', className: 'link-button', 'data-einvoice': 'zugferd',
      'aria-label': t('einvoicePdfLabel', {number}), onclick: () => downloadEInvoice(invoice, 'zugferd')},
    t('einvoicePdf')));
  } else if (invoice.invoicePdf) {
    links.push(el('a', {href: invoice.invoicePdf, target: '_blank', rel: 'noopener noreferrer',
      'aria-label': t('pdfLabel', {number})}, t('pdf')));
  }
  const selected = state.breakdown === invoice.invoiceId;
  return el('tr', {'data-invoice-id': invoice.invoiceId, className: selected ? 'selected' : null},
    el('td', {'data-label': t('period')}, period),
    el('td', {'data-label': t('number')}, number),
    el('td', {'data-label': t('invoiceDate')}, formatDate(invoice.createdAt)),
    el('td', {'data-label': t('paidDate')}, formatDate(invoice.paidAt)),
    el('td', {'data-label': t('baseFeeColumn'), className: 'amount'}, formatMoney(invoice.baseFee, invoice.currency)),
    el('td', {'data-label': t('awsColumn'), className: 'amount'}, formatMoney(invoice.awsCosts, invoice.currency)),
    el('td', {'data-label': t('netAmount'), className: 'amount'}, formatMoney(invoice.netAmount, invoice.currency)),
    el('td', {'data-label': t('taxAmount'), className: 'amount'}, formatMoney(invoice.taxAmount, invoice.currency)),
    el('td', {'data-label': t('grossAmount'), className: 'amount'}, formatMoney(invoice.amount, invoice.currency)),
    el('td', {'data-label': t('status')}, statusBadges(invoice)),
    el('td', {'data-label': t('documents')}, links.length ? el('span', {className: 'links'}, links) : '–'),
    el('td', {'data-label': t('breakdown')},
      el('button', {type: 'button', className: 'link-button', 'aria-pressed': String(selected),
        'aria-label': t('showBreakdown', {period}), onclick: () => selectBreakdown(invoice.invoiceId)},
      t('breakdown'))),
  );
}

function downloadEInvoice(invoice, format) {
  return download(api.einvoice(invoice.invoiceId, format));
}

/** Save the file an api.js download resolves to. */
async function download(fetching) {
  try {
    const {blob, name} = await fetching;
    const url = URL.createObjectURL(blob);
    const link = el('a', {href: url, download: name, className: 'visually-hidden'});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) handleApiError(error);
    else setPageStatus(t('downloadFailed'));
  }
}

function renderInvoices() {
  const {invoices, nextCursor, previousMonth} = state.data;
  const body = $('invoices-body');
  // Last month's invoice waits while AWS still marks its costs as estimated.
  const waiting = previousMonth?.waitingForFinalCosts
    ? el('p', {className: 'note', id: 'waiting-for-final-costs'},
      t('waitingForFinalCosts', {period: formatPeriod({start: `${previousMonth.period}-01`})}))
    : null;
  if (!invoices.length) {
    body.replaceChildren(...[waiting, el('p', {className: 'empty'}, t('noInvoices'))].filter(Boolean));
  } else {
    const amounts = ['baseFeeColumn', 'awsColumn', 'netAmount', 'taxAmount', 'grossAmount'];
    const head = el('tr', {}, ['period', 'number', 'invoiceDate', 'paidDate', ...amounts,
      'status', 'documents', 'breakdown'].map((key) => el('th', {
      scope: 'col', className: amounts.includes(key) ? 'amount' : null}, t(key))));
    body.replaceChildren(...[waiting, el('table', {className: 'invoices'},
      el('caption', {className: 'visually-hidden'}, t('invoiceHistory')),
      el('thead', {}, head),
      el('tbody', {}, invoices.flatMap(invoiceRows)))].filter(Boolean));
  }
  show('load-more', Boolean(nextCursor));
}

// --- AWS services breakdown -------------------------------------------------------------------

function selectBreakdown(choice) {
  state.breakdown = choice;
  renderInvoices();
  renderBreakdownChoices();
  renderBreakdown();
  $('breakdown').scrollIntoView({block: 'nearest'});
}

function renderBreakdownChoices() {
  const select = $('breakdown-select');
  const options = [];
  if (state.data.currentCosts) options.push(el('option', {value: CURRENT}, t('currentMonth')));
  for (const invoice of state.data.invoices) {
    options.push(el('option', {value: invoice.invoiceId},
      t('invoiceOption', {period: formatPeriod(invoice.period), number: invoice.number ?? statusLabel(invoice.status)})));
  }
  select.replaceChildren(...options);
  select.disabled = !options.length;
  if (state.breakdown) select.value = state.breakdown;
}

function breakdownSource() {
  if (state.breakdown === CURRENT) {
    const costs = state.data.currentCosts;
    return costs && {title: t('currentMonth'), breakdown: costs.awsBreakdown, total: costs.awsCosts,
      currency: costs.currency, estimated: costs.costsEstimated};
  }
  const invoice = state.data.invoices.find((item) => item.invoiceId === state.breakdown);
  if (!invoice) return null;
  // Corrections of earlier months are entries of their own, and count towards the AWS total shown.
  const corrections = invoice.corrections ?? [];
  const breakdown = {...invoice.awsBreakdown};
  for (const correction of corrections) breakdown[correction.description] = correction.amount;
  const total = corrections.reduce((sum, correction) => addMoney(sum, correction.amount), invoice.awsCosts);
  return {title: formatPeriod(invoice.period), breakdown, total, currency: invoice.currency,
    estimated: invoice.costsEstimated};
}

/** "12.34" + "-2.74" as exact cents (money is never a float here). */
function addMoney(a, b) {
  const cents = (text) => {
    const negative = text.startsWith('-');
    const [whole, fraction] = text.replace('-', '').split('.');
    const value = BigInt(whole) * 100n + BigInt(fraction);
    return negative ? -value : value;
  };
  const sum = cents(a) + cents(b);
  const magnitude = sum < 0n ? -sum : sum;
  return `${sum < 0n ? '-' : ''}${magnitude / 100n}.${String(magnitude % 100n).padStart(2, '0')}`;
}

function renderBreakdown() {
  const body = $('breakdown-body');
  const source = breakdownSource();
  const entries = Object.entries(source?.breakdown ?? {})
    .filter(([, amount]) => amount !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]) || a[0].localeCompare(b[0]));
  if (!source || !entries.length) {
    body.replaceChildren(el('p', {className: 'empty'}, t('noBreakdown')));
    return;
  }
  // Bar lengths are geometry, not money: a float ratio is fine here; every amount shown is the API's string.
  const largest = Math.max(...entries.map(([, amount]) => Math.abs(Number(amount))), 0) || 1;
  const rows = entries.map(([service, amount], index) => {
    const bar = el('span', {className: `bar-fill tone-${index % 6}`});
    bar.style.width = `${Math.max(1, (Math.abs(Number(amount)) / largest) * 100).toFixed(1)}%`;
    return el('li', {className: 'bar-row'},
      el('span', {className: 'service'}, service),
      el('span', {className: 'value'}, formatMoney(amount, source.currency)),
      el('span', {className: 'bar', 'aria-hidden': 'true'}, bar));
  });
  body.replaceChildren(
    el('figure', {className: 'chart'},
      el('figcaption', {className: 'visually-hidden'}, t('chartLabel', {period: source.title})),
      el('ol', {className: 'bars', 'aria-label': t('chartLabel', {period: source.title})}, rows)),
    el('p', {className: 'bar-total'}, el('span', {}, t('total')), el('strong', {}, formatMoney(source.total, source.currency)),
      source.estimated ? el('span', {className: 'badge estimated', title: t('estimatedHint')}, t('estimated')) : null),
  );
}

// --- invoice recipients: who gets the invoices and credit notes by e-mail ------------------------

function renderInvoiceRecipients() {
  const addresses = state.data.invoiceEmails ?? [];
  const undeliverable = state.data.undeliverableEmails ?? [];
  const body = $('invoice-recipients-body');
  if (!addresses.length) {
    body.replaceChildren(el('p', {className: 'empty'}, t('noInvoiceRecipients')));
    return;
  }
  const blocked = addresses.filter((address) => isUndeliverable(address, undeliverable));
  body.replaceChildren(
    el('ul', {className: 'recipient-list', 'aria-label': t('invoiceRecipientsList')}, addresses.map((address) => {
      const bad = blocked.includes(address);
      return el('li', {'data-recipient': address, className: bad ? 'undeliverable' : null},
        el('span', {className: 'address'}, address),
        bad ? el('span', {className: 'badge failed'}, t('undeliverable')) : null);
    })),
    blocked.length ? el('p', {className: 'hint-box', id: 'undeliverable-hint'}, t('undeliverableHint')) : null,
  );
}

function showRecipientsError(message) {
  $('invoice-recipients-error').textContent = message || '';
  show('invoice-recipients-error', Boolean(message));
  $('invoice-recipients-input').setAttribute('aria-invalid', String(Boolean(message)));
}

function openRecipientsForm() {
  show('invoice-recipients-saved', false);
  showRecipientsError('');
  $('invoice-recipients-label').textContent = t('invoiceRecipientsField', {max: MAX_INVOICE_RECIPIENTS});
  $('invoice-recipients-input').value = (state.data?.invoiceEmails ?? []).join('\n');
  show('invoice-recipients-form', true);
  show('edit-invoice-recipients', false);
  $('invoice-recipients-input').focus();
}

function closeRecipientsForm() {
  showRecipientsError('');
  show('invoice-recipients-form', false);
  show('edit-invoice-recipients', true);
}

/** PUT /billing/invoice-emails (api.js only reads; this is the page's one write with a JSON body). */
async function putInvoiceEmails(addresses) {
  let response;
  try {
    response = await fetch(`${config.apiBase}/billing/invoice-emails`, {
      method: 'PUT',
      headers: {
        Authorization: `Bearer ${state.session?.accessToken ?? ''}`, Accept: 'application/json',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({invoiceEmails: addresses}),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'network', 'network error');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.error?.code, body.error?.message);
  return body;
}

async function onSaveRecipients(event) {
  event.preventDefault();
  showRecipientsError('');
  show('invoice-recipients-saved', false);
  const addresses = parseAddresses($('invoice-recipients-input').value);
  if (!addresses.length) {
    showRecipientsError(t('invoiceRecipientsMissing'));
    $('invoice-recipients-input').focus();
    return;
  }
  if (addresses.length > MAX_INVOICE_RECIPIENTS) {
    showRecipientsError(t('invoiceRecipientsTooMany', {max: MAX_INVOICE_RECIPIENTS}));
    $('invoice-recipients-input').focus();
    return;
  }
  const button = $('save-invoice-recipients');
  button.disabled = true;
  button.textContent = t('saving');
  try {
    const saved = await putInvoiceEmails(addresses);
    state.data.invoiceEmails = saved.invoiceEmails;
    state.data.undeliverableEmails = saved.undeliverableEmails;
    closeRecipientsForm();
    renderInvoiceRecipients();
    $('invoice-recipients-saved').textContent = t('invoiceRecipientsSaved');
    show('invoice-recipients-saved', true);
    $('edit-invoice-recipients').focus();
  } catch (error) {
    if (error instanceof ApiError && [401, 403].includes(error.status)) {
      handleApiError(error);
      return;
    }
    if (error instanceof ApiError && error.status === 400) {
      showRecipientsError(t('invoiceRecipientsRejected', {message: error.message}));
    } else if (error instanceof ApiError && error.status === 409) {
      showRecipientsError(t('invoiceRecipientsNoAccount'));
    } else {
      showRecipientsError(t('invoiceRecipientsFailed'));
    }
    $('invoice-recipients-input').focus();
  } finally {
    button.disabled = false;
    button.textContent = t('save');
  }
}

// --- start ------------------------------------------------------------------------------------

function applyLanguage(code) {
  setLanguage(code);
  $('language').value = currentLanguage();
  translateDocument();
  if (state.session) signedIn(state.session);
  $('invoice-recipients-label').textContent = t('invoiceRecipientsField', {max: MAX_INVOICE_RECIPIENTS});
  render();
}

function redirectedBackFromStripe() {
  // Stripe redirects here after flows that need it (e.g. bank authentication) with these parameters.
  const params = new URLSearchParams(window.location.search);
  if (!params.get('setup_intent')) return false;
  window.history.replaceState(null, '', pageUrl);
  return params.get('redirect_status') === 'succeeded';
}

async function start() {
  setUpLanguage($('language'), config.language, applyLanguage);
  $('sign-in-form').addEventListener('submit', onPasswordSignIn);
  $('hosted-sign-in-button').addEventListener('click', onHostedSignIn);
  $('sign-out').addEventListener('click', signOut);
  $('retry').addEventListener('click', loadBilling);
  $('load-more').addEventListener('click', loadMoreInvoices);
  $('add-payment-method').addEventListener('click', openPaymentForm);
  $('cancel-payment-method').addEventListener('click', closePaymentForm);
  $('payment-form').addEventListener('submit', onSavePaymentMethod);
  $('breakdown-select').addEventListener('change', (event) => selectBreakdown(event.target.value));
  $('edit-invoice-recipients').addEventListener('click', openRecipientsForm);
  $('cancel-invoice-recipients').addEventListener('click', () => {
    closeRecipientsForm();
    $('edit-invoice-recipients').focus();
  });
  $('invoice-recipients-form').addEventListener('submit', onSaveRecipients);

  if (config.authMode === 'hosted-ui') {
    try {
      await completeHostedSignIn(config.cognito, pageUrl);
    } catch (error) {
      showSignIn(t('signInFailed'));
      return;
    }
  }
  const returnedFromStripe = redirectedBackFromStripe();
  const session = currentSession();
  if (!session) {
    showSignIn();
    return;
  }
  signedIn(session);
  await loadBilling();
  if (returnedFromStripe && state.data) paymentMethodAdded(null);
}

start();
