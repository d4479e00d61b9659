// Wires the page to the client: log, input box, send button, status.
import { connect, joinRoom, openInbox } from "./client.js";

const log = document.getElementById("log");
const status = document.getElementById("status");
const form = document.getElementById("send-form");
const input = document.getElementById("message");

function addEntry(kind, text, sender, list = log) {
  const entry = document.createElement("li");
  entry.className = kind;
  entry.textContent = text; // text, never HTML: messages cannot inject markup
  if (sender) entry.dataset.from = sender; // shown by the stylesheet
  list.append(entry);
  entry.scrollIntoView({ block: "end" });
}

// Who is in the room: the list from the presence frame, then each change.
const roster = new Set();
function showPresence(frame) {
  if (frame.type === "presence") {
    roster.clear();
    frame.users.forEach((user) => roster.add(user));
  } else if (frame.type === "join") {
    roster.add(frame.user);
  } else {
    roster.delete(frame.user);
  }
  const items = [...roster].sort().map((user) => {
    const item = document.createElement("li");
    item.textContent = user;
    return item;
  });
  document.getElementById("presence")?.replaceChildren(...items);
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
    onmessage: (data, frame) => addEntry("received", data, frame.from),
    onpresence: showPresence,
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

// With users: this user's inbox, and a form that sends to one user.
const me = document.body.dataset.user;
const inbox = document.getElementById("inbox");
if (me && inbox) {
  openInbox(me, {
    heartbeatMs: 1000 * Number(document.body.dataset.heartbeatSeconds),
    onmessage: (data, frame) => addEntry("received", data, frame.from ?? "server", inbox),
  });
  document.getElementById("direct-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const to = document.getElementById("direct-to").value;
    const text = document.getElementById("direct-text");
    const response = await fetch(`/api/users/${encodeURIComponent(to)}/messages`, {
      method: "POST",
      body: text.value,
    });
    if (response.ok) {
      addEntry("sent", text.value, `to ${to}`, inbox);
      text.value = "";
    } else {
      addEntry("error", JSON.parse(await response.text()).error, null, inbox);
    }
  });
}
