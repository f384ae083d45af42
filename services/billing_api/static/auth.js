// Sign-in with Cognito: the Hosted UI (authorization code + PKCE) in production, a password form
// against the pool's InitiateAuth on the local stack. Tokens live in sessionStorage (this tab,
// this origin only), never in a cookie, and go to the API only as a bearer header.

const SESSION_KEY = 'billing.session';
const PKCE_KEY = 'billing.pkce';
// Refresh a little before expiry so a request never leaves with a token that dies on the way.
const EXPIRY_MARGIN_MS = 30_000;

/** A sign-in failure; `code` is a key of the page's texts. */
export class SignInError extends Error {
  constructor(code, detail = '') {
    super(detail || code);
    this.code = code;
  }
}

/** The stored session if it is still valid, else null. */
export function currentSession(now = Date.now()) {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (session && session.accessToken && session.expiresAt - EXPIRY_MARGIN_MS > now) return session;
  } catch (error) {
    // An unreadable entry is as good as none.
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

/** Forget the tokens of this tab. */
export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

function storeSession(accessToken, expiresInSeconds) {
  const claims = tokenClaims(accessToken);
  const session = {
    accessToken,
    expiresAt: Date.now() + expiresInSeconds * 1000,
    username: claims.username || claims['cognito:username'] || claims.sub || '',
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

/** The claims of a JWT, unverified: for display only (the API verifies every token). */
export function tokenClaims(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(decodeURIComponent(escape(atob(payload))));
  } catch (error) {
    return {};
  }
}

/** Local stack: USER_PASSWORD_AUTH against the pool's InitiateAuth; resolves to the new session. */
export async function signInWithPassword(cognito, username, password) {
  let response;
  try {
    response = await fetch(cognito.idpEndpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': 'AWSCognitoIdentityProviderService.InitiateAuth',
      },
      body: JSON.stringify({
        AuthFlow: 'USER_PASSWORD_AUTH',
        ClientId: cognito.clientId,
        AuthParameters: {USERNAME: username, PASSWORD: password},
      }),
    });
  } catch (error) {
    throw new SignInError('signInFailed', 'network');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const type = String(body.__type || response.headers.get('x-amzn-errortype') || '');
    const wrong = type.includes('NotAuthorized') || type.includes('UserNotFound');
    throw new SignInError(wrong ? 'wrongPassword' : 'signInFailed', type);
  }
  if (body.ChallengeName || !body.AuthenticationResult) {
    throw new SignInError('challengeUnsupported', body.ChallengeName || '');
  }
  return storeSession(body.AuthenticationResult.AccessToken, body.AuthenticationResult.ExpiresIn || 3600);
}

function base64Url(bytes) {
  let text = '';
  new Uint8Array(bytes).forEach((byte) => { text += String.fromCharCode(byte); });
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A PKCE pair (RFC 7636): a random verifier and its S256 challenge. */
export async function createPkcePair() {
  const verifier = base64Url(crypto.getRandomValues(new Uint8Array(48)));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return {verifier, challenge: base64Url(digest)};
}

/** The Hosted UI's authorize URL for the code flow with PKCE. */
export function buildAuthorizeUrl(cognito, {redirectUri, challenge, state}) {
  const url = new URL('/oauth2/authorize', cognito.domain);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: cognito.clientId,
    redirect_uri: redirectUri,
    scope: 'openid email',
    state,
    code_challenge_method: 'S256',
    code_challenge: challenge,
  }).toString();
  return url.toString();
}

/** The Hosted UI's logout URL, which returns to `logoutUri`. */
export function buildLogoutUrl(cognito, logoutUri) {
  const url = new URL('/logout', cognito.domain);
  url.search = new URLSearchParams({client_id: cognito.clientId, logout_uri: logoutUri}).toString();
  return url.toString();
}

/** Production: remember a fresh verifier and state, then go to the Hosted UI. */
export async function startHostedSignIn(cognito, redirectUri) {
  const {verifier, challenge} = await createPkcePair();
  const state = base64Url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({verifier, state}));
  window.location.assign(buildAuthorizeUrl(cognito, {redirectUri, challenge, state}));
}

/**
 * Production: if the Hosted UI sent us back with `?code=&state=`, trade the code for tokens.
 * Resolves to the new session, or null when the URL carries no code.
 */
export async function completeHostedSignIn(cognito, redirectUri, location = window.location) {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  if (!code && !params.get('error')) return null;
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || 'null');
  sessionStorage.removeItem(PKCE_KEY);
  // The URL no longer needs the code; a reload must not try to use it twice.
  window.history.replaceState(null, '', redirectUri);
  if (!code || !saved || params.get('state') !== saved.state) throw new SignInError('signInFailed', 'state');
  const response = await fetch(new URL('/oauth2/token', cognito.domain), {
    method: 'POST',
    headers: {'Content-Type': 'application/x-www-form-urlencoded'},
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: cognito.clientId,
      code,
      redirect_uri: redirectUri,
      code_verifier: saved.verifier,
    }),
  }).catch(() => null);
  if (!response || !response.ok) throw new SignInError('signInFailed', 'token');
  const tokens = await response.json();
  return storeSession(tokens.access_token, tokens.expires_in || 3600);
}
