// The billing API as the page uses it: every call carries the admin's bearer token.

/** An API answer other than 2xx; `status` 401 means sign in again, 403 means no access. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

/** A client for the API at `apiBase` ("" is this origin), with the token from `token()`. */
export function billingApi(apiBase, token) {
  async function call(method, path) {
    let response;
    try {
      response = await fetch(apiBase + path, {
        method,
        headers: {Authorization: `Bearer ${token()}`, Accept: 'application/json'},
        cache: 'no-store',
      });
    } catch (error) {
      throw new ApiError(0, 'network', 'network error');
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, body.error?.code, body.error?.message);
    return body;
  }

  /** A file the API serves (an e-invoice), as a Blob with its file name. */
  async function file(path) {
    let response;
    try {
      response = await fetch(apiBase + path, {headers: {Authorization: `Bearer ${token()}`}, cache: 'no-store'});
    } catch (error) {
      throw new ApiError(0, 'network', 'network error');
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new ApiError(response.status, body.error?.code, body.error?.message);
    }
    const disposition = response.headers.get('Content-Disposition') || '';
    const name = /filename="([^"]+)"/.exec(disposition)?.[1] || 'Rechnung';
    return {blob: await response.blob(), name};
  }

  return {
    /** The e-invoice of an invoice: format "xrechnung" (XML) or "zugferd" (PDF). */
    einvoice: (invoiceId, format) =>
      file(`/billing/invoices/${encodeURIComponent(invoiceId)}/einvoice?format=${encodeURIComponent(format)}`),
    /** The e-invoice of a credit note of one of the caller's invoices: "xrechnung" (XML) or "zugferd" (PDF). */
    creditNoteEInvoice: (invoiceId, creditNoteId, format) =>
      file(`/billing/invoices/${encodeURIComponent(invoiceId)}/credit-notes/${encodeURIComponent(creditNoteId)}`
        + `/einvoice?format=${encodeURIComponent(format)}`),
    /** Invoices (newest first, one page, each with its credit notes), payment method and current costs. */
    billing: (cursor) => call('GET', '/billing' + (cursor ? `?cursor=${encodeURIComponent(cursor)}` : '')),
    /** A SetupIntent for the Payment Element: {clientSecret, publishableKey}. */
    createSetupIntent: () => call('POST', '/billing/setup-intent'),
    /** Pay a failed invoice now: {paid, declined, actionUrl}. */
    payInvoice: (invoiceId) => call('POST', `/billing/invoices/${encodeURIComponent(invoiceId)}/pay`),
  };
}
