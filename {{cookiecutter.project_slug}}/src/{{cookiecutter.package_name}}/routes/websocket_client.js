// Connect a browser page to this service's WebSocket endpoints and obey its
// refusals: the policy of the Python client (docs/clients.md), as an ES module
// with no build step and no dependency. The app serves it at GET /ws-client.js:
//
//   import { connect } from "/ws-client.js";
//   const client = connect("/ws/echo", {
//     token, channel: "subprotocol",  // or "ticket", "query"
//     onMessage: (event) => console.log(event.data),
//   });
//   client.socket?.send("hello");  client.close();
//
// Outcome of every close (a page never sees HTTP statuses):
//   1000                                   -> "done"
//   4400, 4401, 4403, 4404, 4431, others   -> "fatal": stop{% if cookiecutter.authentication == "jwt" %}
//   4401 "token_expired", with `refresh`   -> "refresh": a new token, then at once{% endif %}
//   4429, 4503                             -> "back off": jittered exponential delay
//   4408, 1001, 1006 after open, 1011-1014 -> "reconnect": jittered exponential delay
//   1006 before open                       -> "unopened": a refused handshake and an
//     unreachable server look the same (error, then 1006). Retried like "reconnect"
//     at most `maxUnopened` times in a row, then stop: never a retry storm against
//     a server that keeps saying no. The ticket channel sees the HTTP status of
//     POST /ws/tickets, and treats it as the Python client does.
// Attempts in a row and the time spent retrying are bounded; every decision goes
// to `log` (e.g. console.debug).

const BACK_OFF = new Set([4429, 4503]);
const RECONNECT = new Set([1001, 1006, 1011, 1012, 1013, 1014, 4408]);
const DEFAULTS = {
  channel: "subprotocol",
  maxAttempts: 10, // attempts in a row that end in anything but "done"
  maxSeconds: 300, // time spent retrying in a row
  maxUnopened: 3, // 1006 before open, in a row
  baseDelay: 0.5, // seconds; doubles per attempt up to maxDelay
  maxDelay: 30,
  healthyAfter: 30, // a session open this long starts the count afresh
};

export function classify(code, reason, opened{% if cookiecutter.authentication == "jwt" %}, canRefresh{% endif %}) {
  if (code === 1000) return "done";
{%- if cookiecutter.authentication == "jwt" %}
  if (reason === "token_expired" && canRefresh) return "refresh";
{%- endif %}
  if (code === 1006 && !opened) return "unopened";
  if (BACK_OFF.has(code)) return "back off";
  if (RECONNECT.has(code)) return "reconnect";
  return "fatal";
}

export function httpOutcome(status, code{% if cookiecutter.authentication == "jwt" %}, canRefresh{% endif %}) {
{%- if cookiecutter.authentication == "jwt" %}
  if (code === "token_expired" && canRefresh) return "refresh";
{%- endif %}
  if (status === 429 || status === 503) return "back off";
  if (status >= 500) return "reconnect";
  return "fatal";
}

export function delay(attempt, options, atLeast = 0) {
  // Half the exponential step plus up to as much again at random ("equal jitter").
  const step = Math.min(options.maxDelay, options.baseDelay * 2 ** (attempt - 1));
  return Math.max(atLeast, step / 2 + Math.random() * (step / 2));
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
{%- if cookiecutter.authentication == "jwt" %}

function expiresAt(token) {
  // A JWT's exp in ms, read without verifying (the server verifies); null without one.
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload)).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

function isRefreshed(data) {
  if (typeof data !== "string" || !data.startsWith("{") || !data.includes("auth.")) return false;
  try {
    return JSON.parse(data).type === "auth.refreshed";
  } catch {
    return false;
  }
}
{%- endif %}

// Options: token, channel, ticketUrl, onOpen(socket), onMessage(event, socket),
// onClose(outcome) after each session, onStop(outcome) once at the end,{% if cookiecutter.authentication == "jwt" %}
// refresh: async () => a new token (on token_expired, and in band before exp),{% endif %}
// log, and the bounds in DEFAULTS.
export function connect(url, options = {}) {
  const o = { ...DEFAULTS, log: () => {}, ...options };
  const target = new URL(url, location.href);
  target.protocol = target.protocol.replace(/^http/, "ws");
  const ticketUrl = o.ticketUrl || new URL("/ws/tickets", target.href.replace(/^ws/, "http"));
  let token = o.token;
  let socket = null;
  let timer = null;
  let stopped = false;
  let attempt = 0;
  let unopened = 0;
  let started = Date.now();

  async function open() {
    timer = null;
    attempt += 1;
    const address = new URL(target);
    let protocols = [];
    if (token && o.channel === "subprotocol") {
      protocols = ["bearer", `bearer.${base64url(token)}`];
    } else if (token && o.channel === "ticket") {
      let response;
      try {
        response = await fetch(ticketUrl, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      } catch (error) {
        return settle({ action: "reconnect", code: String(error) });
      }
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const wait = Number(response.headers.get("Retry-After")) || 0;
        const action = httpOutcome(response.status, body.code{% if cookiecutter.authentication == "jwt" %}, !!o.refresh{% endif %});
        return settle({ action, status: response.status, code: body.code, retryAfter: wait });
      }
      address.searchParams.set("ticket", body.ticket);
    } else if (token) {
      address.searchParams.set("token", token);
    }
    if (stopped) return;
    const ws = new WebSocket(address, protocols);
    socket = ws;
    let openedAt = null;
{%- if cookiecutter.authentication == "jwt" %}
    let refreshTimer = null;
    const scheduleRefresh = () => {
      const exp = o.refresh && expiresAt(token);
      if (!exp || exp <= Date.now()) return; // expired already: the close says token_expired
      const left = exp - Date.now();
      // A little before exp: a third of what is left, and at most 30 s before.
      refreshTimer = setTimeout(async () => {
        let fresh;
        try {
          fresh = await o.refresh();
        } catch (error) {
          return o.log("refresh failed; the server will close at exp", error);
        }
        if (ws.readyState !== WebSocket.OPEN || !(expiresAt(fresh) > exp)) return;
        token = fresh;
        o.log("refreshing in band", (exp - Date.now()) / 1000);
        ws.send(JSON.stringify({ type: "auth.refresh", token }));
        scheduleRefresh();
      }, Math.max(0, left - Math.min(30000, left / 3)));
    };
{%- endif %}
    ws.onopen = () => {
      openedAt = Date.now();
      unopened = 0;
      o.log("open", address.pathname);
{%- if cookiecutter.authentication == "jwt" %}
      scheduleRefresh();
{%- endif %}
      o.onOpen?.(ws);
    };
    ws.onmessage = (event) => {
{%- if cookiecutter.authentication == "jwt" %}
      if (o.refresh && isRefreshed(event.data)) return o.log("refreshed in band", event.data);
{%- endif %}
      o.onMessage?.(event, ws);
    };
    ws.onclose = (event) => {
{%- if cookiecutter.authentication == "jwt" %}
      clearTimeout(refreshTimer);
{%- endif %}
      if (openedAt !== null && Date.now() - openedAt >= o.healthyAfter * 1000) {
        attempt = 1;
        started = Date.now();
      }
      const action = classify(event.code, event.reason, openedAt !== null{% if cookiecutter.authentication == "jwt" %}, !!o.refresh{% endif %});
      settle({ action, closeCode: event.code, code: event.reason });
    };
  }
  async function settle(outcome) {
    outcome.attempt = attempt;
    if (outcome.action === "unopened") unopened += 1;
    const atLeast = outcome.action === "back off" ? outcome.retryAfter || 0 : 0;
    outcome.delay = delay(attempt, o, atLeast);
{%- if cookiecutter.authentication == "jwt" %}
    if (outcome.action === "refresh") outcome.delay = 0;
{%- endif %}
    if (outcome.closeCode !== undefined) o.onClose?.(outcome);
    const elapsed = (Date.now() - started) / 1000;
    if (stopped || outcome.action === "done" || outcome.action === "fatal") {
      return stop(outcome, stopped ? "closed by the page" : outcome.action);
    }
    if (unopened > o.maxUnopened || attempt >= o.maxAttempts || elapsed + outcome.delay > o.maxSeconds) {
      return stop(outcome, "giving up");
    }
    o.log(outcome.action, outcome, `attempt ${attempt + 1} in ${outcome.delay.toFixed(2)} s`);
{%- if cookiecutter.authentication == "jwt" %}
    if (outcome.action === "refresh") {
      try {
        token = await o.refresh();
      } catch (error) {
        return stop({ ...outcome, error }, "refresh failed");
      }
    }
{%- endif %}
    timer = setTimeout(open, outcome.delay * 1000);
  }

  function stop(outcome, why) {
    o.log(why, outcome);
    stopped = true;
    o.onStop?.({ ...outcome, why });
  }

  open();
  return {
    get socket() {
      return socket;
    },
    close(code = 1000, reason = "") {
      stopped = true;
      clearTimeout(timer);
      socket?.close(code, reason);
    },
  };
}
