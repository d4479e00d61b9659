// Wires the page to the client: log, input box, send button, status.
import { connect, joinRoom } from "./client.js";

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

function showStatus(state, detail) {
  status.dataset.state = state;
  status.textContent = detail ? `${state} (${detail})` : state;
}

const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/;

// The echo or broadcast channel, or with ?channel=rooms one room, resumed
// after every reconnect and reload.
function openSocket(room) {
  if (room === undefined) {
    return connect(document.body.dataset.socketPath, {
      onmessage: (data) => addEntry("received", describe(data)),
      onstatus: showStatus,
    });
  }
  if (!ROOM_NAME.test(room)) {
    addEntry("error", "A room name is 1-64 of A-Z a-z 0-9 . _ - : pick another.");
    showStatus("disconnected", "no such room");
    return null;
  }
  return joinRoom(room, {
    heartbeatMs: 1000 * Number(document.body.dataset.heartbeatSeconds),
    onmessage: (data) => addEntry("received", data),
    onmissed: () => addEntry("notice", "Some messages were missed while you were away."),
    onstatus: showStatus,
  });
}

const socket = openSocket(document.body.dataset.room);

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
