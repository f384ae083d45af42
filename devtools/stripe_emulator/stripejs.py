"""A stand-in for Stripe.js (``/v3/``), so the admin page's Payment Element flow runs offline.

Real Stripe.js must come from js.stripe.com; on the local stack the page loads this script from the
emulator instead (setting ``STRIPE_JS_URL``). It offers the part of the Stripe.js API the page uses,
with the same shapes:

    const stripe = Stripe(publishableKey)
    const elements = stripe.elements({clientSecret, locale})
    const payment = elements.create('payment'); payment.mount('#selector')    card or SEPA (IBAN) form
    await stripe.confirmSetup({elements, redirect: 'if_required'})          -> {setupIntent} | {error}

``confirmSetup`` talks to the emulator the way Stripe.js talks to Stripe: it creates the
PaymentMethod from the raw card number or IBAN with the publishable key (``key=`` form parameter),
then confirms the SetupIntent with its ``client_secret``. The browser makes these calls from the
page's origin, so ``allow_cross_origin`` gives the API responses the CORS header api.stripe.com sends.
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Request, Response

PATH_PREFIX = "/v3"

_SCRIPT = r"""/* Stripe.js stand-in served by the local Stripe emulator. Not Stripe.js. */
(function () {
  'use strict';
  var API_BASE = __API_BASE__;
  var TEXT = {
    de: {card: 'Karte', sepa: 'SEPA-Lastschrift', number: 'Kartennummer', expiry: 'Ablaufdatum (MM / JJ)',
         cvc: 'Sicherheitscode', iban: 'IBAN', name: 'Vollständiger Name', email: 'E-Mail', method: 'Zahlungsart',
         mandate: 'Mit der Angabe Ihrer IBAN ermächtigen Sie uns, Zahlungen per SEPA-Lastschrift einzuziehen.',
         incomplete: 'Bitte füllen Sie alle Felder aus.', expiryInvalid: 'Das Ablaufdatum ist ungültig.',
         card_declined: 'Ihre Karte wurde abgelehnt.', incorrect_number: 'Ihre Kartennummer ist ungültig.'},
    en: {card: 'Card', sepa: 'SEPA Direct Debit', number: 'Card number', expiry: 'Expiration date (MM / YY)',
         cvc: 'Security code', iban: 'IBAN', name: 'Full name', email: 'Email', method: 'Payment method',
         mandate: 'By providing your IBAN you authorise us to collect payments by SEPA Direct Debit.',
         incomplete: 'Please fill in every field.', expiryInvalid: 'The expiration date is invalid.',
         card_declined: 'Your card was declined.', incorrect_number: 'Your card number is incorrect.'}
  };
  var STYLE = '.emu-stripe-element{display:grid;gap:.6rem}.emu-stripe-element fieldset{border:0;margin:0;' +
    'padding:0;display:flex;gap:.5rem;flex-wrap:wrap}.emu-stripe-element label{display:grid;gap:.2rem;' +
    'font-size:.9rem}.emu-stripe-element input[type=text],.emu-stripe-element input[type=email]{font:inherit;' +
    'padding:.55rem .6rem;border:1px solid #9aa4b2;border-radius:6px;min-width:0}.emu-stripe-row{display:grid;' +
    'grid-template-columns:1fr 1fr;gap:.6rem}.emu-stripe-element .emu-stripe-tab{display:flex;' +
    'align-items:center;gap:.35rem;' +
    'border:1px solid #9aa4b2;border-radius:6px;padding:.4rem .7rem}.emu-stripe-mandate{font-size:.8rem;' +
    'color:#4a5568;margin:0}.emu-stripe-visually-hidden{position:absolute;width:1px;height:1px;' +
    'overflow:hidden;clip:rect(0 0 0 0)}';
  var counter = 0;

  function encode(params, prefix, out) {
    out = out || [];
    Object.keys(params).forEach(function (name) {
      var value = params[name];
      var key = prefix ? prefix + '[' + name + ']' : name;
      if (value === undefined || value === null) return;
      if (typeof value === 'object') encode(value, key, out);
      else out.push(encodeURIComponent(key) + '=' + encodeURIComponent(String(value)));
    });
    return out.join('&');
  }

  function call(method, path, publishableKey, params) {
    var body = encode(Object.assign({key: publishableKey}, params));
    var url = API_BASE + path + (method === 'GET' ? '?' + body : '');
    return fetch(url, {
      method: method,
      headers: method === 'GET' ? {} : {'Content-Type': 'application/x-www-form-urlencoded'},
      body: method === 'GET' ? undefined : body
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) throw json.error || {type: 'api_error', message: 'HTTP ' + response.status};
        return json;
      });
    }, function () {
      throw {type: 'api_connection_error', message: 'Could not reach Stripe.'};
    });
  }

  function intentId(clientSecret) {
    return String(clientSecret || '').split('_secret_')[0];
  }

  function PaymentElement(group) {
    this._group = group;
    this._handlers = {};
    this._root = null;
    this._type = 'card';
    this._id = 'emu-stripe-' + (++counter);
  }
  PaymentElement.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };
  PaymentElement.prototype._emit = function (event, payload) {
    (this._handlers[event] || []).forEach(function (handler) { handler(payload); });
  };
  PaymentElement.prototype.mount = function (target) {
    var host = typeof target === 'string' ? document.querySelector(target) : target;
    if (!host) throw new Error('Stripe stand-in: mount target not found: ' + target);
    var self = this;
    // Like the real element, it loads the SetupIntent first and offers only its payment method types.
    this._group._loadTypes().then(function () { self._render(host); });
    return this;
  };
  PaymentElement.prototype._render = function (host) {
    if (!document.getElementById('emu-stripe-style')) {
      var style = document.createElement('style');
      style.id = 'emu-stripe-style';
      style.textContent = STYLE;
      document.head.appendChild(style);
    }
    var self = this;
    var t = this._group._text;
    var id = this._id;
    var types = this._group._types;
    var root = document.createElement('div');
    root.className = 'emu-stripe-element';
    root.innerHTML =
      '<fieldset' + (types.length < 2 ? ' hidden' : '') + '><legend class="emu-stripe-visually-hidden">' +
      t.method + '</legend>' +
      (types.indexOf('card') >= 0 ? '<label class="emu-stripe-tab"><input type="radio" name="' + id +
        '-type" value="card"> ' + t.card + '</label>' : '') +
      (types.indexOf('sepa_debit') >= 0 ? '<label class="emu-stripe-tab"><input type="radio" name="' + id +
        '-type" value="sepa_debit"> ' + t.sepa + '</label>' : '') +
      '</fieldset>' +
      '<div data-type="card"><label>' + t.number + '<input type="text" name="cardnumber" inputmode="numeric" ' +
      'autocomplete="cc-number" placeholder="1234 1234 1234 1234"></label>' +
      '<div class="emu-stripe-row"><label>' + t.expiry + '<input type="text" name="exp-date" ' +
      'inputmode="numeric" autocomplete="cc-exp" placeholder="MM / JJ"></label><label>' + t.cvc +
      '<input type="text" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC"></label>' +
      '</div></div>' +
      '<div data-type="sepa_debit" hidden><label>' + t.name + '<input type="text" name="name" ' +
      'autocomplete="name"></label><label>' + t.email + '<input type="email" name="email" ' +
      'autocomplete="email"></label><label>' + t.iban + '<input type="text" name="iban" ' +
      'placeholder="DE00 0000 0000 0000 0000 00"></label><p class="emu-stripe-mandate">' + t.mandate +
      '</p></div>';
    host.appendChild(root);
    this._root = root;
    this._select(types[0] || 'card');
    root.addEventListener('change', function (event) {
      if (event.target.type === 'radio') self._select(event.target.value);
    });
    root.addEventListener('input', function () {
      self._emit('change', {elementType: 'payment', complete: self._complete(), empty: self._empty(),
                            value: {type: self._type}});
    });
    this._emit('ready', {elementType: 'payment'});
  };
  PaymentElement.prototype._select = function (type) {
    this._type = type;
    var root = this._root;
    root.querySelectorAll('input[type=radio]').forEach(function (radio) { radio.checked = radio.value === type; });
    root.querySelectorAll('[data-type]').forEach(function (panel) { panel.hidden = panel.dataset.type !== type; });
  };
  PaymentElement.prototype._value = function (name) {
    var input = this._root && this._root.querySelector('[data-type="' + this._type + '"] [name="' + name + '"]');
    return input ? input.value.trim() : '';
  };
  PaymentElement.prototype._names = function () {
    return this._type === 'card' ? ['cardnumber', 'exp-date', 'cvc'] : ['name', 'email', 'iban'];
  };
  PaymentElement.prototype._complete = function () {
    return this._names().every(function (name) { return this._value(name) !== ''; }, this);
  };
  PaymentElement.prototype._empty = function () {
    return this._names().every(function (name) { return this._value(name) === ''; }, this);
  };
  PaymentElement.prototype.focus = function () {
    var input = this._root && this._root.querySelector('[data-type="' + this._type + '"] input');
    if (input) input.focus();
  };
  PaymentElement.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._root = null;
  };
  PaymentElement.prototype.destroy = PaymentElement.prototype.unmount;
  PaymentElement.prototype._paymentMethodData = function () {
    var t = this._group._text;
    if (!this._complete()) return {error: {type: 'validation_error', code: 'incomplete', message: t.incomplete}};
    if (this._type === 'sepa_debit') {
      return {data: {type: 'sepa_debit', sepa_debit: {iban: this._value('iban').replace(/\s+/g, '')},
                     billing_details: {name: this._value('name'), email: this._value('email')}}};
    }
    var expiry = this._value('exp-date').match(/^(\d{1,2})\s*\/?\s*(\d{2}|\d{4})$/);
    if (!expiry) return {error: {type: 'validation_error', code: 'invalid_expiry', message: t.expiryInvalid}};
    return {data: {type: 'card', card: {number: this._value('cardnumber').replace(/\s+/g, ''),
                                        exp_month: parseInt(expiry[1], 10), exp_year: parseInt(expiry[2], 10),
                                        cvc: this._value('cvc')}}};
  };

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._clientSecret = options.clientSecret;
    var locale = String(options.locale || navigator.language || 'en').slice(0, 2);
    this._text = TEXT[locale] || TEXT.en;
    this._types = ['card', 'sepa_debit'];
    this._element = null;
  }
  Elements.prototype.create = function (type) {
    if (type !== 'payment') throw new Error('Stripe stand-in: only the payment element is offered');
    this._element = new PaymentElement(this);
    return this._element;
  };
  Elements.prototype.getElement = function (type) {
    return type === 'payment' ? this._element : null;
  };
  Elements.prototype.submit = function () {
    var element = this._element;
    var result = element ? element._paymentMethodData() : {error: {type: 'validation_error', message: 'no element'}};
    return Promise.resolve(result.error ? {error: result.error} : {});
  };
  Elements.prototype._loadTypes = function () {
    var self = this;
    return call('GET', '/v1/setup_intents/' + intentId(this._clientSecret), this._stripe._key,
                {client_secret: this._clientSecret})
      .then(function (intent) { self._types = intent.payment_method_types || self._types; }, function () {});
  };

  function StripeStandIn(publishableKey) {
    if (!(this instanceof StripeStandIn)) return new StripeStandIn(publishableKey);
    if (!publishableKey || String(publishableKey).indexOf('pk_') !== 0) {
      throw new Error('Stripe stand-in: a publishable key (pk_...) is required');
    }
    this._key = publishableKey;
  }
  StripeStandIn.prototype.elements = function (options) {
    return new Elements(this, options || {});
  };
  StripeStandIn.prototype.retrieveSetupIntent = function (clientSecret) {
    return call('GET', '/v1/setup_intents/' + intentId(clientSecret), this._key, {client_secret: clientSecret})
      .then(function (intent) { return {setupIntent: intent}; }, function (error) { return {error: error}; });
  };
  StripeStandIn.prototype.confirmSetup = function (options) {
    var key = this._key;
    var elements = options && options.elements;
    var clientSecret = (options && options.clientSecret) || (elements && elements._clientSecret);
    var element = elements && elements._element;
    if (!element || !clientSecret) {
      return Promise.resolve({error: {type: 'validation_error', message: 'elements with a clientSecret required'}});
    }
    var prepared = element._paymentMethodData();
    if (prepared.error) return Promise.resolve({error: prepared.error});
    var confirmParams = (options && options.confirmParams) || {};
    return call('POST', '/v1/payment_methods', key, prepared.data).then(function (paymentMethod) {
      var params = {payment_method: paymentMethod.id, client_secret: clientSecret,
                    return_url: confirmParams.return_url};
      if (paymentMethod.type === 'sepa_debit') {
        params.mandate_data = {customer_acceptance: {type: 'online', online: {user_agent: navigator.userAgent}}};
      }
      return call('POST', '/v1/setup_intents/' + intentId(clientSecret) + '/confirm', key, params);
    }).then(function (setupIntent) {
      if (options.redirect !== 'if_required' && confirmParams.return_url) {
        var url = new URL(confirmParams.return_url, window.location.href);
        url.searchParams.set('setup_intent', setupIntent.id);
        url.searchParams.set('setup_intent_client_secret', clientSecret);
        url.searchParams.set('redirect_status', setupIntent.status);
        window.location.assign(url.toString());
      }
      return {setupIntent: setupIntent};
    }, function (error) {
      // Stripe.js shows card errors in the Elements locale.
      var localized = elements._text[error.code];
      return {error: localized ? Object.assign({}, error, {message: localized}) : error};
    });
  };

  window.Stripe = StripeStandIn;
})();
"""


def is_stripe_js_path(path: str) -> bool:
    """Whether ``path`` asks for the Stripe.js stand-in (``/v3`` or ``/v3/``)."""
    return path.rstrip("/") == PATH_PREFIX


def stripe_js_response(api_base: str) -> Response:
    """The stand-in script, calling the emulator at ``api_base`` (its own public URL)."""
    script = _SCRIPT.replace("__API_BASE__", json.dumps(api_base.rstrip("/")))
    response = Response(script, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def allow_cross_origin(request: Request, response: Response) -> None:
    """Let pages on other origins read API answers, as api.stripe.com does for Stripe.js."""
    if request.path.startswith("/v1/"):
        response.headers["Access-Control-Allow-Origin"] = "*"
