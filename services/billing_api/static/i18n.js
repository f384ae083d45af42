// Texts of the Billing page in German (default) and English, locale-aware formatting, and reading the e-mail
// addresses typed into a field (both pages).

const TEXTS = {
  de: {
    title: 'Abrechnung',
    skipToContent: 'Zum Inhalt springen',
    language: 'Sprache',
    signIn: 'Anmelden',
    signInHeading: 'Anmeldung',
    signInIntro: 'Melden Sie sich mit Ihrem Administrator-Konto an.',
    signInHostedIntro: 'Sie werden zur Anmeldeseite weitergeleitet.',
    signInRedirecting: 'Weiterleitung zur Anmeldung …',
    username: 'Benutzername',
    password: 'Passwort',
    signOut: 'Abmelden',
    signedInAs: 'Angemeldet als {name}',
    signingIn: 'Anmeldung läuft …',
    wrongPassword: 'Benutzername oder Passwort ist falsch.',
    signInFailed: 'Die Anmeldung ist fehlgeschlagen. Bitte versuchen Sie es erneut.',
    signInNotConfigured: 'Die Anmeldung ist nicht konfiguriert (COGNITO_DOMAIN fehlt).',
    challengeUnsupported: 'Für dieses Konto ist ein weiterer Anmeldeschritt nötig, den diese Seite nicht unterstützt.',
    sessionExpired: 'Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.',
    noAccessHeading: 'Kein Zugriff',
    noAccess: 'Ihr Konto hat keinen Zugriff auf die Abrechnung. Nur Administratoren können diese Seite nutzen.',
    loading: 'Wird geladen …',
    loadFailed: 'Die Abrechnungsdaten konnten nicht geladen werden.',
    retry: 'Erneut versuchen',
    paymentMethod: 'Zahlungsmethode',
    paymentMethodStored: 'Zahlungsmethode hinterlegt',
    noPaymentMethod: 'Keine Zahlungsmethode hinterlegt',
    noPaymentMethodHint: 'Ohne Zahlungsmethode können Rechnungen nicht automatisch bezahlt werden.',
    addPaymentMethod: 'Zahlungsmethode hinzufügen',
    changePaymentMethod: 'Zahlungsmethode ändern',
    paymentFailedBanner: 'Zahlung für {period} fehlgeschlagen',
    actionRequiredBanner: 'Zahlung für {period} muss bestätigt werden',
    payNow: 'Jetzt bezahlen',
    payNowLabel: 'Rechnung für {period} jetzt bezahlen',
    payNowPaid: 'Die Rechnung für {period} ist bezahlt.',
    payNowDeclined: 'Die Zahlung wurde abgelehnt. Bitte hinterlegen Sie eine andere Zahlungsmethode.',
    payNowFailed: 'Die Zahlung konnte nicht gestartet werden. Bitte versuchen Sie es erneut.',
    payNowNoPaymentMethod: 'Es ist keine Zahlungsmethode hinterlegt. Bitte fügen Sie eine hinzu.',
    payNowAlreadyPaid: 'Die Rechnung für {period} ist bereits bezahlt.',
    tooManyRequests: 'Zu viele Anfragen in kurzer Zeit. Bitte versuchen Sie es in einer Minute erneut.',
    invoiceDate: 'Rechnungsdatum',
    paidDate: 'Bezahlt am',
    baseFeeColumn: 'Grundgebühr',
    awsColumn: 'AWS',
    save: 'Speichern',
    cancel: 'Abbrechen',
    saving: 'Wird gespeichert …',
    paymentMethodAdded: 'Zahlungsmethode erfolgreich hinzugefügt!',
    waitingForConfirmation: 'Warte auf Bestätigung durch Stripe …',
    confirmationSlow: 'Die Bestätigung dauert länger als üblich; die Anzeige aktualisiert sich beim nächsten Laden.',
    setupFailed: 'Die Zahlungsmethode konnte nicht vorbereitet werden. Bitte versuchen Sie es erneut.',
    stripeUnavailable: 'Stripe.js konnte nicht geladen werden.',
    sepaDebit: 'SEPA-Lastschrift',
    card: 'Karte',
    currentCosts: 'Aktuelle Kosten (Vorschau)',
    monthToDate: 'Bisher in diesem Monat',
    forecast: 'Prognose Monatsende',
    awsCosts: 'AWS-Kosten',
    baseFee: 'Grundgebühr',
    asOf: 'Stand: {time}',
    estimated: 'geschätzt',
    estimatedHint: 'AWS hat die Kosten dieses Zeitraums noch nicht abgeschlossen.',
    noCurrentCosts: 'Für den laufenden Monat ist keine Vorschau verfügbar.',
    invoiceHistory: 'Rechnungshistorie',
    period: 'Zeitraum',
    number: 'Rechnungsnummer',
    amount: 'Betrag',
    netAmount: 'Netto',
    taxAmount: 'USt.',
    grossAmount: 'Brutto',
    netHint: 'Beträge netto, zzgl. USt.',
    einvoiceXml: 'E-Rechnung (XML)',
    einvoiceXmlLabel: 'E-Rechnung {number} als XRechnung (XML)',
    einvoicePdf: 'PDF',
    einvoicePdfLabel: 'E-Rechnung {number} als ZUGFeRD-PDF',
    downloadFailed: 'Die Datei konnte nicht geladen werden.',
    status: 'Status',
    documents: 'Rechnung',
    breakdown: 'Aufschlüsselung',
    showBreakdown: 'Aufschlüsselung für {period} anzeigen',
    viewInvoice: 'Ansehen',
    viewInvoiceLabel: 'Rechnung {number} ansehen',
    pdf: 'PDF',
    pdfLabel: 'Rechnung {number} als PDF',
    noInvoices: 'Noch keine Rechnungen.',
    waitingForFinalCosts: 'Die Rechnung für {period} folgt, sobald AWS die Kosten des Monats abgeschlossen hat.',
    loadMore: 'Ältere Rechnungen laden',
    awsBreakdown: 'AWS-Kosten nach Service',
    breakdownFor: 'Zeitraum',
    currentMonth: 'Aktueller Monat (Vorschau)',
    invoiceOption: '{period} – {number}',
    noBreakdown: 'Keine AWS-Kosten in diesem Zeitraum.',
    chartLabel: 'AWS-Kosten nach Service: {period}',
    service: 'Service',
    total: 'Summe AWS',
    creditNotes: 'Korrekturen',
    creditNotesOf: 'Stornorechnungen und Rechnungskorrekturen zu Rechnung {number}',
    creditNoteDated: 'vom {date}',
    creditNoteGross: '{amount} brutto',
    balanceCarried: 'Unter dem Mindestbetrag: wird mit der nächsten Rechnung eingezogen',
    balanceCollected: 'Inkl. {amount} aus einer früheren Rechnung, abgebucht {due}',
    balanceDeducted: 'Guthaben {amount} verrechnet, zu zahlen {due}',
    creditNoteXmlLabel: '{kind} {number} als XRechnung (XML)',
    creditNotePdfLabel: '{kind} {number} als ZUGFeRD-PDF',
    creditNoteFull: 'Stornorechnung',
    creditNotePartial: 'Rechnungskorrektur',
    invoiceRecipients: 'Rechnungsempfänger',
    invoiceRecipientsIntro: 'Rechnungen, Stornorechnungen und Rechnungskorrekturen gehen per E-Mail an diese Adressen.',
    invoiceRecipientsList: 'E-Mail-Adressen der Rechnungsempfänger',
    noInvoiceRecipients: 'Noch keine E-Mail-Adresse hinterlegt.',
    undeliverable: 'nicht zustellbar',
    undeliverableHint: 'An nicht zustellbare Adressen wird nichts mehr gesendet, bis Sie die Rechnungsempfänger erneut speichern.',
    editInvoiceRecipients: 'Rechnungsempfänger ändern',
    invoiceRecipientsField: 'E-Mail-Adressen (eine pro Zeile oder durch Kommas getrennt, höchstens {max})',
    invoiceRecipientsMissing: 'Bitte geben Sie mindestens eine E-Mail-Adresse an.',
    invoiceRecipientsTooMany: 'Bitte geben Sie höchstens {max} E-Mail-Adressen an.',
    invoiceRecipientsRejected: 'Nicht gespeichert: {message}',
    invoiceRecipientsNoAccount: 'Bitte hinterlegen Sie zuerst eine Zahlungsmethode; danach können Sie die Rechnungsempfänger festlegen.',
    invoiceRecipientsFailed: 'Die Rechnungsempfänger konnten nicht gespeichert werden. Bitte versuchen Sie es erneut.',
    invoiceRecipientsSaved: 'Die Rechnungsempfänger wurden gespeichert.',
    corrections: {cancelled: 'Storniert', credited: 'Korrigiert'},
    statuses: {
      paid: 'Bezahlt', open: 'Offen', pending: 'Offen', draft: 'Offen', payment_failed: 'Fehlgeschlagen',
      uncollectible: 'Fehlgeschlagen', action_required: 'Aktion erforderlich', void: 'Storniert',
    },
  },
  en: {
    title: 'Billing',
    skipToContent: 'Skip to content',
    language: 'Language',
    signIn: 'Sign in',
    signInHeading: 'Sign in',
    signInIntro: 'Sign in with your administrator account.',
    signInHostedIntro: 'You will be taken to the sign-in page.',
    signInRedirecting: 'Taking you to sign-in …',
    username: 'Username',
    password: 'Password',
    signOut: 'Sign out',
    signedInAs: 'Signed in as {name}',
    signingIn: 'Signing in …',
    wrongPassword: 'Incorrect username or password.',
    signInFailed: 'Sign-in failed. Please try again.',
    signInNotConfigured: 'Sign-in is not configured (COGNITO_DOMAIN is missing).',
    challengeUnsupported: 'This account needs another sign-in step that this page does not support.',
    sessionExpired: 'Your session has expired. Please sign in again.',
    noAccessHeading: 'No access',
    noAccess: 'Your account has no access to billing. Only administrators can use this page.',
    loading: 'Loading …',
    loadFailed: 'The billing data could not be loaded.',
    retry: 'Try again',
    paymentMethod: 'Payment method',
    paymentMethodStored: 'Payment method on file',
    noPaymentMethod: 'No payment method on file',
    noPaymentMethodHint: 'Without a payment method, invoices cannot be paid automatically.',
    addPaymentMethod: 'Add payment method',
    changePaymentMethod: 'Change payment method',
    paymentFailedBanner: 'Payment for {period} failed',
    actionRequiredBanner: 'Payment for {period} needs your confirmation',
    payNow: 'Pay now',
    payNowLabel: 'Pay the invoice for {period} now',
    payNowPaid: 'The invoice for {period} is paid.',
    payNowDeclined: 'The payment was declined. Please add another payment method.',
    payNowFailed: 'The payment could not be started. Please try again.',
    payNowNoPaymentMethod: 'No payment method is saved. Please add one.',
    payNowAlreadyPaid: 'The invoice for {period} is already paid.',
    tooManyRequests: 'Too many requests in a short time. Please try again in a minute.',
    invoiceDate: 'Invoice date',
    paidDate: 'Paid on',
    baseFeeColumn: 'Base fee',
    awsColumn: 'AWS',
    save: 'Save',
    cancel: 'Cancel',
    saving: 'Saving …',
    paymentMethodAdded: 'Payment method added successfully!',
    waitingForConfirmation: 'Waiting for Stripe to confirm …',
    confirmationSlow: 'Confirmation is taking longer than usual; the page will show it on the next load.',
    setupFailed: 'The payment method could not be prepared. Please try again.',
    stripeUnavailable: 'Stripe.js could not be loaded.',
    sepaDebit: 'SEPA Direct Debit',
    card: 'Card',
    currentCosts: 'Current costs (preview)',
    monthToDate: 'Month to date',
    forecast: 'Forecast for the month',
    awsCosts: 'AWS costs',
    baseFee: 'Base fee',
    asOf: 'As of {time}',
    estimated: 'estimated',
    estimatedHint: 'AWS has not finalised the costs of this period yet.',
    noCurrentCosts: 'No preview is available for the current month.',
    invoiceHistory: 'Invoice history',
    period: 'Period',
    number: 'Invoice number',
    amount: 'Amount',
    netAmount: 'Net',
    taxAmount: 'VAT',
    grossAmount: 'Gross',
    netHint: 'Amounts are net, plus VAT.',
    einvoiceXml: 'E-invoice (XML)',
    einvoiceXmlLabel: 'E-invoice {number} as XRechnung (XML)',
    einvoicePdf: 'PDF',
    einvoicePdfLabel: 'E-invoice {number} as ZUGFeRD PDF',
    downloadFailed: 'The file could not be loaded.',
    status: 'Status',
    documents: 'Invoice',
    breakdown: 'Breakdown',
    showBreakdown: 'Show the breakdown for {period}',
    viewInvoice: 'View',
    viewInvoiceLabel: 'View invoice {number}',
    pdf: 'PDF',
    pdfLabel: 'Invoice {number} as PDF',
    noInvoices: 'No invoices yet.',
    waitingForFinalCosts: 'The invoice for {period} follows once AWS has closed the month\'s costs.',
    loadMore: 'Load older invoices',
    awsBreakdown: 'AWS services breakdown',
    breakdownFor: 'Period',
    currentMonth: 'Current month (preview)',
    invoiceOption: '{period} – {number}',
    noBreakdown: 'No AWS costs in this period.',
    chartLabel: 'AWS costs by service: {period}',
    service: 'Service',
    total: 'AWS total',
    creditNotes: 'Credit notes',
    creditNotesOf: 'Credit notes of invoice {number}',
    creditNoteDated: 'of {date}',
    creditNoteGross: '{amount} gross',
    balanceCarried: 'Below the minimum charge: collected with the next invoice',
    balanceCollected: 'Includes {amount} from an earlier invoice, charged {due}',
    balanceDeducted: 'Credit of {amount} applied, amount due {due}',
    creditNoteXmlLabel: '{kind} {number} as XRechnung (XML)',
    creditNotePdfLabel: '{kind} {number} as ZUGFeRD PDF',
    creditNoteFull: 'Credit note (full)',
    creditNotePartial: 'Credit note (partial)',
    invoiceRecipients: 'Invoice recipients',
    invoiceRecipientsIntro: 'Invoices and credit notes are e-mailed to these addresses.',
    invoiceRecipientsList: 'E-mail addresses of the invoice recipients',
    noInvoiceRecipients: 'No e-mail address yet.',
    undeliverable: 'undeliverable',
    undeliverableHint: 'Nothing is sent to undeliverable addresses until you save the invoice recipients again.',
    editInvoiceRecipients: 'Change invoice recipients',
    invoiceRecipientsField: 'E-mail addresses (one per line or separated by commas, at most {max})',
    invoiceRecipientsMissing: 'Please give at least one e-mail address.',
    invoiceRecipientsTooMany: 'Please give at most {max} e-mail addresses.',
    invoiceRecipientsRejected: 'Not saved: {message}',
    invoiceRecipientsNoAccount: 'Please add a payment method first; then you can choose the invoice recipients.',
    invoiceRecipientsFailed: 'The invoice recipients could not be saved. Please try again.',
    invoiceRecipientsSaved: 'The invoice recipients have been saved.',
    corrections: {cancelled: 'Cancelled', credited: 'Corrected'},
    statuses: {
      paid: 'Paid', open: 'Open', pending: 'Open', draft: 'Open', payment_failed: 'Failed',
      uncollectible: 'Failed', action_required: 'Action required', void: 'Void',
    },
  },
};

const LOCALES = {de: 'de-DE', en: 'en-GB'};
export const LANGUAGES = Object.keys(TEXTS);
let language = 'de';

/** Switch the language of every text and format that follows. */
export function setLanguage(code) {
  language = TEXTS[code] ? code : 'de';
  document.documentElement.lang = language;
  return language;
}

/** Add a page's own texts (the operator page's), over the shared ones. */
export function addTexts(extra) {
  for (const [code, texts] of Object.entries(extra)) Object.assign(TEXTS[code], texts);
}

/** The current language code ("de" or "en"). */
export function currentLanguage() {
  return language;
}

/** The text for `key`, with `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  const text = TEXTS[language][key] ?? TEXTS.de[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

/** The badge text for an invoice status (unknown statuses are shown as they are). */
export function statusLabel(status) {
  return TEXTS[language].statuses[status] ?? status ?? '';
}

/** The text of `key` in the group of texts `group` (a state's or a setting's name); `key` itself if none. */
export function label(group, key) {
  return TEXTS[language][group]?.[key] ?? TEXTS.de[group]?.[key] ?? key ?? '';
}

/** The badge text of an invoice's credit notes: "cancelled" (all taken back) or "credited" (part); "" for none. */
export function correctionLabel(correction) {
  return correction ? label('corrections', correction) : '';
}

/** What a credit note is called: a Stornorechnung (the whole invoice) or a Rechnungskorrektur (part of it). */
export function creditNoteKind(full) {
  return t(full ? 'creditNoteFull' : 'creditNotePartial');
}

/** How an invoice status looks: paid, open, failed, action or void. */
export function statusTone(status) {
  return {
    paid: 'paid', open: 'open', pending: 'open', draft: 'open', payment_failed: 'failed',
    uncollectible: 'failed', action_required: 'action', void: 'void',
  }[status] ?? 'open';
}

/**
 * An amount from the API ("37.74", a decimal string) in the locale's format ("37,74 €").
 * The string goes to Intl as it is, so the decimal value is never a binary float.
 */
export function formatMoney(amount, currency) {
  if (amount === null || amount === undefined || !currency) return '–';
  return new Intl.NumberFormat(LOCALES[language], {style: 'currency', currency}).format(String(amount));
}

/** A billing period ({start: "2024-11-01", ...}) as its month: "November 2024". */
export function formatPeriod(period) {
  if (!period || !period.start) return '–';
  const [year, month] = period.start.split('-').map(Number);
  const date = new Date(Date.UTC(year, month - 1, 1));
  return new Intl.DateTimeFormat(LOCALES[language], {month: 'long', year: 'numeric', timeZone: 'UTC'}).format(date);
}

/** An epoch-millisecond time as local date and time. */
export function formatDateTime(epochMs) {
  if (epochMs === null || epochMs === undefined) return '–';
  // With the time zone: an admin abroad must not read a Berlin time as their own.
  return new Intl.DateTimeFormat(LOCALES[language], {
    day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
  }).format(new Date(epochMs));
}

/** A date alone (invoice and paid dates). */
export function formatDate(epochMs) {
  if (epochMs === null || epochMs === undefined) return '–';
  return new Intl.DateTimeFormat(LOCALES[language], {dateStyle: 'medium'}).format(new Date(epochMs));
}

/** The addresses typed into a field: one per line, or separated by commas or semicolons; each once. */
export function parseAddresses(text) {
  const seen = new Set();
  return text.split(/[\s,;]+/).map((address) => address.trim()).filter((address) => {
    const key = address.toLowerCase();
    if (!address || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Whether `address` is among `undeliverable` (compared without case, as the server does). */
export function isUndeliverable(address, undeliverable) {
  const key = address.toLowerCase();
  return (undeliverable ?? []).some((other) => other.toLowerCase() === key);
}

/** Replace the text of every element with a `data-i18n` key. */
export function translateDocument(root = document) {
  root.querySelectorAll('[data-i18n]').forEach((element) => {
    element.textContent = t(element.dataset.i18n);
  });
  document.title = t('title');
}
