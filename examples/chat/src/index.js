// A chat room: every message a client sends goes to everyone in the room. The room is the
// sockets this isolate holds (an app's sockets stay with the isolate that accepted them).

const room = new Set();

function broadcast(text) {
  for (const socket of room) {
    try {
      socket.send(text);
    } catch {
      room.delete(socket);
    }
  }
}

function join(request) {
  const name = new URL(request.url).searchParams.get("name")?.slice(0, 32) || "someone";
  const [client, server] = Object.values(new WebSocketPair());
  server.accept();
  room.add(server);
  broadcast(`* ${name} joined (${room.size} here)`);
  server.addEventListener("message", (event) => {
    if (typeof event.data === "string") broadcast(`${name}: ${event.data.slice(0, 1000)}`);
  });
  server.addEventListener("close", () => {
    room.delete(server);
    broadcast(`* ${name} left`);
  });
  return new Response(null, { status: 101, webSocket: client });
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>edge chat</title>
<style>body{font:16px system-ui;max-width:40em;margin:2em auto}#log{white-space:pre-wrap;border:1px solid #ccc;height:20em;overflow:auto;padding:.5em}</style>
<h1>edge chat</h1>
<div id="log"></div>
<form id="say"><input id="text" autocomplete="off" size="50" autofocus> <button>Send</button></form>
<script>
const log = document.getElementById("log");
const name = prompt("Your name?") || "someone";
const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws?name=" + encodeURIComponent(name));
ws.onmessage = (e) => { log.textContent += e.data + "\\n"; log.scrollTop = log.scrollHeight; };
ws.onclose = (e) => { log.textContent += "(disconnected: " + e.code + ")\\n"; };
document.getElementById("say").onsubmit = (e) => {
  e.preventDefault();
  const text = document.getElementById("text");
  if (text.value) ws.send(text.value);
  text.value = "";
};
</script>`;

export default {
  fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/ws") {
      if (request.headers.get("Upgrade") !== "websocket") {
        return new Response("Expected Upgrade: websocket", { status: 426 });
      }
      return join(request);
    }
    return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
  },
};
