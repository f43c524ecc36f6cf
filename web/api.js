// The session and every call to the API. The access token lives in this tab's memory only;
// the refresh token and the SSE copy of the access token are HttpOnly cookies the page never
// sees (services/auth/cookies.py). Tabs refresh one at a time (Web Locks), each with the
// cookie the last one left, so rotation's reuse detection never fires for a second tab.

let access = null; // { token, expiresAt }
let me = null;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `request failed (${status})`);
    this.status = status;
    this.reason = (body?.details || []).find((d) => (d["@type"] || "").endsWith("ErrorInfo"))?.reason || "";
    this.fields = {};
    for (const d of body?.details || []) {
      for (const v of d.field_violations || []) this.fields[v.field] = v.description;
    }
  }
}

// Refusals in words: what a trader reads instead of a code.
const WORDS = {
  STALE_QUOTE: "The price is stale; wait for a fresh quote and try again.",
  NO_QUOTE: "There is no price for this symbol yet.",
  MARKET_CLOSED: "The market is closed for this symbol.",
  POSITION_LIMIT: "That would exceed the position limit of your rules.",
  QUANTITY_OUT_OF_RANGE: "The quantity is outside the instrument's range.",
  QUANTITY_STEP: "The quantity must be a multiple of the instrument's step.",
  CHALLENGE_NOT_ACTIVE: "This challenge is not active.",
  FLAT_BY: "Trading is closed until the next session opens.",
  STOP_LOSS_WRONG_SIDE: "The stop loss is on the wrong side of the price.",
  TAKE_PROFIT_WRONG_SIDE: "The take profit is on the wrong side of the price.",
  INVALID_CREDENTIALS: "The email or password is not right.",
  TOKEN_EXPIRED: "Your session has expired; log in again.",
  RATE_LIMITED: "Too many requests; wait a moment.",
};

export function inWords(err) {
  if (!(err instanceof ApiError)) return String(err?.message || err);
  const base = WORDS[err.reason] || err.message;
  const fields = Object.entries(err.fields).map(([f, d]) => `${f}: ${d}`);
  return fields.length ? `${base} (${fields.join("; ")})` : base;
}

async function send(method, path, body, token) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await r.text();
  const data = text ? JSON.parse(text) : {};
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// Whether this browser has a session to resume: a flag, not a token (the tokens are cookies
// the page cannot read), so a first visit does not ask for a refresh that must fail.
const HINT = "tradesense.session";

function keep(pair) {
  access = { token: pair.access_token, expiresAt: Date.now() + (pair.expires_in || 900) * 1000 };
  localStorage.setItem(HINT, "1");
}

// One refresh at a time across the browser's tabs; a tab that waited finds a fresh cookie.
async function refresh() {
  const run = async () => {
    try {
      keep(await send("POST", "/api/auth/refresh", {}));
      return true;
    } catch {
      access = null;
      localStorage.removeItem(HINT);
      return false;
    }
  };
  return navigator.locks ? navigator.locks.request("tradesense-refresh", run) : run();
}

export async function resume() {
  if (!access && (!localStorage.getItem(HINT) || !(await refresh()))) return null;
  me = await call("GET", "/api/auth/me");
  return me;
}

export const user = () => me;

export async function login(email, password) {
  keep(await send("POST", "/api/auth/login", { email, password }));
  me = await call("GET", "/api/auth/me");
  return me;
}

export async function register(email, password, displayName) {
  await send("POST", "/api/auth/register", { email, password, display_name: displayName });
  return login(email, password);
}

export async function logout() {
  try {
    await send("POST", "/api/auth/logout", {}, access?.token);
  } finally {
    access = null;
    me = null;
    localStorage.removeItem(HINT);
  }
}

export async function call(method, path, body) {
  if (access && access.expiresAt - Date.now() < 30_000) await refresh();
  try {
    return await send(method, path, body, access?.token);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && (await refresh())) {
      return send(method, path, body, access?.token);
    }
    throw err;
  }
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
