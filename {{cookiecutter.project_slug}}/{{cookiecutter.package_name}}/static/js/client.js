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
// a dropped network, a proxy), which a server that sends heartbeats shows.

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
