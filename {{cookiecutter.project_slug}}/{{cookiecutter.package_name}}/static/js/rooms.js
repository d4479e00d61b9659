// Rooms: join one, and resume after any reconnect or reload of the page.
//
//   const room = joinRoom("lobby", { onmessage, onmissed, onstatus });
//
// keeps the last message id per room (in sessionStorage) and reconnects with
// ?since=<id>, so the server first replays what was missed. onmissed(frame)
// is called when the server no longer has all of it; onframe(frame) with any
// other frame a feature adds. Room sockets get a heartbeat frame every
// heartbeatMs: a socket silent for longer is a dead line, opened again.
import { connect } from "./client.js";

export function joinRoom(room, options) {
  return follow(`/ws/rooms/${encodeURIComponent(room)}`, `room-last-id:${room}`, options);
}

// Any socket of room frames at `base`, resumed from the id kept under `key`.
export function follow(
  base,
  key,
  { onmessage = () => {}, onmissed = () => {}, onframe = () => {}, onstatus, heartbeatMs = 20000 } = {},
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
      } else if (frame.type !== "heartbeat") {
        onframe(frame);
      }
    },
  });
}
