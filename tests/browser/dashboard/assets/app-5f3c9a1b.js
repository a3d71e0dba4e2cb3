// The test dashboard's only script (a hashed asset name, as a bundler would write it). It
// sends no token: the session cookie set by /login does the work, for REST and WebSocket.
const show = (id, text) => {
  document.getElementById(id).textContent = text;
};

show("path", location.pathname);

const agents = await fetch("/api/agents", {
  credentials: "same-origin",
  headers: { Accept: "application/json" },
});
if (agents.ok) {
  const body = await agents.json();
  show("agents", `agents: ${agents.status} total=${body.total}`);
} else {
  show("agents", `agents: ${agents.status}`);
}

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socket = new WebSocket(`${scheme}//${location.host}/ws`);
socket.addEventListener("message", (m) => {
  const frame = JSON.parse(m.data);
  if (frame.type === "connected") show("ws", "ws: connected");
});
socket.addEventListener("close", (e) => show("ws", `ws: closed ${e.code}`));

document.getElementById("logout").addEventListener("click", async () => {
  const out = await fetch("/auth/session", { method: "DELETE", credentials: "same-origin" });
  show("logout-result", `logged out: ${out.status}`);
  const after = await fetch("/api/agents", { credentials: "same-origin" });
  show("after", `after logout: ${after.status}`);
});
