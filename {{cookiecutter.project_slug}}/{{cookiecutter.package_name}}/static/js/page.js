// Wires the page to the client: log, input box, send button, status.
import { connect } from "./client.js";

const log = document.getElementById("log");
const status = document.getElementById("status");
const form = document.getElementById("send-form");
const input = document.getElementById("message");

function addEntry(kind, text) {
  const entry = document.createElement("li");
  entry.className = kind;
  entry.textContent = text; // text, never HTML: messages cannot inject markup
  log.append(entry);
  entry.scrollIntoView({ block: "end" });
}

function describe(data) {
  return typeof data === "string" ? data : `[${data.byteLength} bytes]`;
}

const socket = connect(document.body.dataset.socketPath, {
  onmessage: (data) => addEntry("received", describe(data)),
  onstatus: (state, detail) => {
    status.dataset.state = state;
    status.textContent = detail ? `${state} (${detail})` : state;
  },
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text) return;
  if (socket.send(text)) {
    addEntry("sent", text);
    input.value = "";
  } else {
    addEntry("error", "not connected: message not sent");
  }
});
