// What both pages (the Billing tab and the operator page) build their DOM and language choice with.

const LANGUAGE_KEY = 'billing.language';

/** Create an element with attributes and children (strings become text nodes, never HTML). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'className') element.className = value;
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child instanceof Node ? child : String(child));
    }
  }
  return element;
}

/** Apply the remembered (else `configured`) language now, and whatever `select` is switched to later. */
export function setUpLanguage(select, configured, apply) {
  let language = configured;
  try {
    language = localStorage.getItem(LANGUAGE_KEY) || language;
  } catch (error) {
    // Storage may be off; the configured default applies.
  }
  apply(language);
  select.addEventListener('change', (event) => {
    try {
      localStorage.setItem(LANGUAGE_KEY, event.target.value);
    } catch (error) {
      // Not remembered, still applied.
    }
    apply(event.target.value);
  });
}
