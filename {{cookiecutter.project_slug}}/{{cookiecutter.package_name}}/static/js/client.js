// A websocket client that reconnects by itself.
//
//   const socket = connect("/ws", { onmessage, onstatus });
//   socket.send("hello");   // false while disconnected
//   socket.status;          // "connecting" | "connected" | "disconnected"
//   socket.close();         // stop for good
//
// The URL follows the page: wss: under https:, and the page's own host.
// After a drop it retries with exponential backoff and jitter, so that a
// restarted server is not hit by every client at the same instant.
// `path` may be a function, asked again before each attempt. With
// `silenceMs`, a connection that receives nothing for that long is closed
// and opened again: the server went away without a word (a sleeping laptop,
// a dropped network, a proxy). Room sockets get a heartbeat frame to keep
// them talking.
//
//   const room = joinRoom("lobby", { onmessage, onmissed, onstatus });
//
// joins a room and resumes after any reconnect, or a reload of the page: it
// keeps the last message id per room (in sessionStorage) and reconnects with
// ?since=<id>, so the server first replays what was missed. onmissed(frame)
// is called when the server no longer has all of it; onpresence(frame) with
// each presence, join and leave frame, where the app knows its users.
//
//   const inbox = openInbox("alice", { onmessage });
//
// follows the logged-in user's own inbox the same way.

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 4000;

export function socketUrl(path, location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export function retryDelay(attempt) {
  const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export function connect(path, { onmessage = () => {}, onstatus = () => {}, silenceMs } = {}) {
  let ws = null;
  let attempt = 0;
  let timer = null;
  let silence = null;
  let stopped = false;
  const client = { status: "connecting" };

  function setStatus(status, detail = "") {
    client.status = status;
    onstatus(status, detail);
  }

  function open() {
    setStatus("connecting");
    ws = new WebSocket(socketUrl(typeof path === "function" ? path() : path));
    ws.binaryType = "arraybuffer";
    const current = ws;
    const dropped = (why) => {
      clearTimeout(silence);
      if (stopped) return;
      const delay = retryDelay(attempt++);
      setStatus("disconnected", `${why}, retrying in ${(delay / 1000).toFixed(1)} s`);
      timer = setTimeout(open, delay);
    };
    const listen = () => {
      clearTimeout(silence);
      if (!silenceMs) return;
      silence = setTimeout(() => {
        // A dead peer never answers a close: give up on it without waiting.
        current.onclose = null;
        current.close();
        dropped("silent for too long");
      }, silenceMs);
    };
    ws.onopen = () => {
      attempt = 0;
      listen();
      setStatus("connected");
    };
    ws.onmessage = (event) => {
      listen();
      onmessage(event.data);
    };
    ws.onclose = (event) => dropped(`code ${event.code}`);
  }

  client.send = (data) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data);
    return true;
  };
  client.close = () => {
    stopped = true;
    clearTimeout(timer);
    if (ws) ws.close(1000);
    setStatus("disconnected");
  };

  open();
  return client;
}

export function joinRoom(room, options) {
  return follow(`/ws/rooms/${encodeURIComponent(room)}`, `room-last-id:${room}`, options);
}

export function openInbox(user, options) {
  return follow("/ws/inbox", `inbox-last-id:${user}`, options);
}

const PRESENCE = new Set(["presence", "join", "leave"]);

function follow(
  base,
  key,
  { onmessage = () => {}, onmissed = () => {}, onpresence = () => {}, onstatus, heartbeatMs = 20000 } = {},
) {
  const path = () => {
    const since = sessionStorage.getItem(key);
    return since ? `${base}?since=${encodeURIComponent(since)}` : base;
  };
  return connect(path, {
    onstatus,
    silenceMs: 2.5 * heartbeatMs, // a heartbeat or two may be late; three is a dead line
    onmessage: (data) => {
      const frame = JSON.parse(data);
      if (frame.type === "missed") {
        onmissed(frame);
      } else if (frame.type === "message") {
        sessionStorage.setItem(key, frame.id);
        onmessage(frame.data, frame);
      } else if (PRESENCE.has(frame.type)) {
        onpresence(frame);
      }
    },
  });
}
