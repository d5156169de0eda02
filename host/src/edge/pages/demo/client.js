// The demo pages' only connection to the host: fetch a token, connect, send, hear events.
//
// Both pages talk to the host through this one small object so that, when the host
// serves /mswoole.js (docs/PROTOCOL.md), switching to it is a change here and in one
// <script> tag: its connect/send/on-event calls map one to one onto these.
"use strict";

const MswooleDemo = (() => {
  // The application-level ping of docs/PROTOCOL.md: text "2", answered "3". Well under
  // heartbeat.idle_s (60 s by default), so an idle page stays connected.
  const HEARTBEAT_MS = 25000;

  /** Asks the demo endpoint for a token: {token, id, type, code, nickname}. */
  async function token(type, code, nickname) {
    // encodeURIComponent, not URLSearchParams: the host does not read "+" as a space.
    const query = Object.entries({ type, code, nickname })
      .map(([key, value]) => `${key}=${encodeURIComponent(value)}`)
      .join("&");
    const response = await fetch(`/demo/token?${query}`, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  /**
   * Opens a connection with `auth` and reconnects (after 1, 2, 4 … 15 s) when it drops.
   * handlers: onOpen() after every (re)connect, onEvent(envelope), onStatus(text).
   * Returns {send(method, fields)}; sends while disconnected are dropped and reported.
   */
  function connect(auth, handlers) {
    let socket = null;
    let heartbeat = null;
    let delay = 1000;
    const status = (text) => handlers.onStatus && handlers.onStatus(text);

    function open() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}/live?auth=${encodeURIComponent(auth)}`);
      status("connecting");
      socket.onopen = () => {
        delay = 1000;
        status("connected");
        heartbeat = setInterval(() => socket.send("2"), HEARTBEAT_MS);
        handlers.onOpen && handlers.onOpen();
      };
      socket.onmessage = (message) => {
        if (message.data === "3") return;
        let envelope;
        try {
          envelope = JSON.parse(message.data);
        } catch (_) {
          return;
        }
        // The acknowledgement of every request (docs/PROTOCOL.md): nothing to show.
        if (envelope.event === "receiveMessage") return;
        handlers.onEvent(envelope);
      };
      socket.onclose = (close) => {
        clearInterval(heartbeat);
        status(`disconnected (${close.code}), retrying`);
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      };
    }

    open();
    return {
      send(method, fields) {
        if (!socket || socket.readyState !== WebSocket.OPEN) {
          status("not connected: message not sent");
          return false;
        }
        socket.send(JSON.stringify(Object.assign({ method }, fields || {})));
        return true;
      },
    };
  }

  /**
   * The text a string value stands for. The host HTML-escapes every string it routes
   * (protocol.escape_html, on by default); the pages put text in with textContent, never
   * innerHTML, so the five entities are undone here and nothing is ever parsed as HTML.
   */
  function plain(value) {
    return String(value ?? "")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"')
      .replace(/&#039;/g, "'")
      .replace(/&amp;/g, "&");
  }

  /** A new element with a class and text (never HTML). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** "HH:MM" of unix seconds. */
  function clock(seconds) {
    const at = seconds ? new Date(seconds * 1000) : new Date();
    return at.toTimeString().slice(0, 5);
  }

  /** The page's ?name=value, or a default. */
  function param(name, fallback) {
    return new URLSearchParams(location.search).get(name) || fallback;
  }

  return { token, connect, plain, el, clock, param };
})();
