// The rooms channel of the page: joins the room of #room-form, resumed after
// every reconnect and reload. Any other frame a feature sends goes out as a
// "room-frame" event on the document, for the features that show them.
import { addEntry, showStatus, useSocket } from "./page.js";
import { joinRoom } from "./rooms.js";

const ROOM_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const form = document.getElementById("room-form");
const room = form.dataset.room;

if (ROOM_NAME.test(room)) {
  // Joined once every script of the page has run: their listeners hear the first frame.
  document.addEventListener("DOMContentLoaded", () =>
    useSocket(
      joinRoom(room, {
        heartbeatMs: 1000 * Number(form.dataset.heartbeatSeconds),
        onmessage: (data, frame) => addEntry("received", data, frame.from),
        onmissed: () => addEntry("notice", "Some messages were missed while you were away."),
        onframe: (frame) => document.dispatchEvent(new CustomEvent("room-frame", { detail: frame })),
        onstatus: showStatus,
      }),
    ),
  );
} else {
  addEntry("error", "A room name is 1-64 of A-Z a-z 0-9 . _ - : pick another.");
  showStatus("disconnected", "no such room");
}
