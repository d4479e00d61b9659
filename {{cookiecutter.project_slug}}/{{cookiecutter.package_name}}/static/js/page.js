// Wires the page to the client: log, input box, send button, status.
// Other scripts of the page add to it through the exports below.
import { connect } from "./client.js";

const log = document.getElementById("log");
const status = document.getElementById("status");
const form = document.getElementById("send-form");
const input = document.getElementById("message");
let socket = null;

export function addEntry(kind, text, sender, list = log) {
  const entry = document.createElement("li");
  entry.className = kind;
  entry.textContent = text; // text, never HTML: messages cannot inject markup
  if (sender) entry.dataset.from = sender; // shown by the stylesheet
  list.append(entry);
  entry.scrollIntoView({ block: "end" });
}

export function showStatus(state, detail) {
  status.dataset.state = state;
  status.textContent = detail ? `${state} (${detail})` : state;
}

// The socket the send form writes to.
export function useSocket(client) {
  socket = client;
}

function describe(data) {
  return typeof data === "string" ? data : `[${data.byteLength} bytes]`;
}

// The channel's socket, where the page has one to open by itself.
const path = document.body.dataset.socketPath;
if (path) {
  useSocket(
    connect(path, {
      onmessage: (data) => addEntry("received", describe(data)),
      onstatus: showStatus,
    }),
  );
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text) return;
  if (socket?.send(text)) {
    addEntry("sent", text);
    input.value = "";
  } else {
    addEntry("error", "not connected: message not sent");
  }
});
