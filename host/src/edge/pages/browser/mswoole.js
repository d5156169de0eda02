// mswoole.js: the browser client of an mswoole host (README.md, "Browser client").
//
// No dependencies. As a classic script (<script src="/mswoole.js">) it defines the global
// `Mswoole`; /mswoole.mjs is the same file with ES module exports
// (import { Mswoole } from "/mswoole.mjs").
//
//   const client = new Mswoole(`ws://${location.host}/live?auth=${encodeURIComponent(token)}`);
//   client.on("open", () => client.send("live.user.join"));   // after every (re)connect
//   client.on("wallSayBroadcast", (envelope) => show(envelope.param));
//   client.on("notResumed", () => client.send("live.user.join")); // a fresh session: resync
//
// It sends the heartbeat `2` every 25 s, reconnects after a drop with exponential backoff
// and full jitter (a random wait up to 500 ms, doubling to 30 s), and asks for a resumable
// session (docs/PROTOCOL.md, "Resumable sessions"): after a drop it resumes with the last
// seq it has, and the host replays what it missed, once and in order. Events:
// - `open` ({session}): connected on a fresh session, so (re)join rooms here: the first
//   connection, a reconnect whose resume was refused, or any connect to a host that does
//   not resume sessions;
// - `resumed` ({session, missed}): reconnected and nothing was lost, nothing to redo;
// - `notResumed` ({session, reason}): the resume was refused (then `open` follows);
// - `close` ({code, reason, reconnecting});
// - `event` (every envelope), and each envelope's own `event` name.
(function (root) {
  "use strict";

  const HEARTBEAT_MS = 25000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  // How long a host has to send sessionStart before it counts as one without sessions.
  const SESSION_GREETING_MS = 2000;

  class Mswoole {
    /**
     * url: the WebSocket URL with its `auth` query. options: {resume (default true),
     * heartbeatMs, backoffBaseMs, backoffCapMs}.
     */
    constructor(url, options) {
      const given = options || {};
      this.url = url;
      this.resume = given.resume !== false;
      this.heartbeatMs = given.heartbeatMs || HEARTBEAT_MS;
      this.backoffBaseMs = given.backoffBaseMs || BACKOFF_BASE_MS;
      this.backoffCapMs = given.backoffCapMs || BACKOFF_CAP_MS;
      /** The session id, once the host gave one. */
      this.session = null;
      /** The highest seq received in this session. */
      this.last = 0;
      this.handlers = new Map();
      this.socket = null;
      this.heartbeat = null;
      this.retry = null;
      this.attempt = 0;
      this.closed = false;
      // Connect once the caller had a chance to add its handlers.
      setTimeout(() => this.connect(), 0);
    }

    /** Calls `handler` on `name` (see above); returns this client. */
    on(name, handler) {
      if (!this.handlers.has(name)) this.handlers.set(name, []);
      this.handlers.get(name).push(handler);
      return this;
    }

    /** Removes a handler added with `on`. */
    off(name, handler) {
      const list = this.handlers.get(name) || [];
      this.handlers.set(name, list.filter((h) => h !== handler));
      return this;
    }

    /** Sends {method, ...fields}; false (nothing sent) while disconnected. */
    send(method, fields) {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
      this.socket.send(JSON.stringify(Object.assign({ method }, fields || {})));
      return true;
    }

    /** Whether a socket is open. */
    get connected() {
      return !!this.socket && this.socket.readyState === WebSocket.OPEN;
    }

    /** Closes for good: no reconnect; the session ends on the host. */
    close() {
      this.closed = true;
      clearTimeout(this.retry);
      clearInterval(this.heartbeat);
      if (this.socket) this.socket.close(1000);
    }

    emit(name, value) {
      for (const handler of this.handlers.get(name) || []) {
        try {
          handler(value);
        } catch (error) {
          setTimeout(() => {
            throw error;
          }, 0);
        }
      }
    }

    address() {
      const separator = this.url.includes("?") ? "&" : "?";
      if (!this.resume) return this.url;
      if (!this.session) return `${this.url}${separator}resume=1`;
      return `${this.url}${separator}resume=${encodeURIComponent(this.session)}&last=${this.last}`;
    }

    connect() {
      if (this.closed) return;
      const socket = new WebSocket(this.address());
      this.socket = socket;
      this.greeted = false;
      socket.onopen = () => {
        this.attempt = 0;
        this.heartbeat = setInterval(() => {
          if (socket.readyState === WebSocket.OPEN) socket.send("2");
        }, this.heartbeatMs);
        if (!this.resume) {
          this.fresh();
        } else {
          // A host with sessions greets at once; one without (recovery off) says nothing.
          setTimeout(() => {
            if (this.socket === socket && !this.greeted && socket.readyState === WebSocket.OPEN) {
              this.resume = false;
              this.fresh();
            }
          }, SESSION_GREETING_MS);
        }
      };
      socket.onmessage = (message) => this.receive(message.data);
      socket.onclose = (close) => {
        clearInterval(this.heartbeat);
        if (this.socket !== socket) return;
        const reconnecting = !this.closed;
        this.emit("close", { code: close.code, reason: close.reason, reconnecting });
        if (reconnecting) this.schedule();
      };
    }

    fresh() {
      this.emit("open", { session: this.session });
    }

    /** Full jitter: a random wait up to base·2^attempt, capped. */
    schedule() {
      const ceiling = Math.min(this.backoffCapMs, this.backoffBaseMs * Math.pow(2, this.attempt));
      this.attempt += 1;
      this.retry = setTimeout(() => this.connect(), Math.random() * ceiling);
    }

    receive(data) {
      if (data === "3") return;
      let envelope;
      try {
        envelope = JSON.parse(data);
      } catch (_) {
        return;
      }
      if (envelope === null || typeof envelope !== "object") return;
      const param = envelope.param || {};
      switch (envelope.event) {
        case "sessionStart":
          this.greeted = true;
          this.session = param.session;
          this.last = 0;
          this.fresh();
          return;
        case "sessionResumed":
          this.greeted = true;
          this.emit("resumed", { session: param.session, missed: param.missed });
          return;
        case "sessionNotResumed":
          this.greeted = true;
          this.session = param.session;
          this.last = 0;
          this.emit("notResumed", { session: this.session, reason: envelope.info });
          this.fresh();
          return;
        default:
      }
      if (typeof envelope.seq === "number") {
        // Never twice: the host replays only what came after `last`.
        if (envelope.seq <= this.last) return;
        this.last = envelope.seq;
      }
      this.emit("event", envelope);
      if (typeof envelope.event === "string") this.emit(envelope.event, envelope);
    }
  }

  root.Mswoole = Mswoole;
})(typeof globalThis !== "undefined" ? globalThis : self);
