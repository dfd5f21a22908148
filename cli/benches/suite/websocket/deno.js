// The Deno side of the WebSocket benchmark: websocket/worker.js with Deno.upgradeWebSocket.
export default {
  fetch(request) {
    if (request.headers.get("upgrade") !== "websocket") return new Response("ok");
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(event.data);
    return response;
  },
};
