// The edge and workerd side of the WebSocket benchmark (benches/suite/websocket.rs): echo
// every message, as a Worker does with a WebSocketPair. websocket/deno.js is the same with
// Deno.upgradeWebSocket.
export default {
  fetch(request) {
    if (request.headers.get("Upgrade") !== "websocket") return new Response("ok");
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (event) => server.send(event.data));
    return new Response(null, { status: 101, webSocket: client });
  },
};
