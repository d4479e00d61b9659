// The users parts of the page: this user's inbox, a form that sends to one
// user, and who is in the room (from the room's presence, join and leave frames).
import { addEntry } from "./page.js";
import { follow } from "./rooms.js";

// Follows the logged-in user's own inbox as a room is followed.
export function openInbox(user, options) {
  return follow("/ws/inbox", `inbox-last-id:${user}`, options);
}

const section = document.getElementById("inbox-section");
const inbox = document.getElementById("inbox");
const me = section.dataset.user;

openInbox(me, {
  heartbeatMs: 1000 * Number(section.dataset.heartbeatSeconds),
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

// Who is in the room: the list from the presence frame, then each change.
const roster = new Set();
document.addEventListener("room-frame", ({ detail: frame }) => {
  if (frame.type === "presence") {
    roster.clear();
    frame.users.forEach((user) => roster.add(user));
  } else if (frame.type === "join") {
    roster.add(frame.user);
  } else if (frame.type === "leave") {
    roster.delete(frame.user);
  } else {
    return;
  }
  const items = [...roster].sort().map((user) => {
    const item = document.createElement("li");
    item.textContent = user;
    return item;
  });
  document.getElementById("presence")?.replaceChildren(...items);
});
