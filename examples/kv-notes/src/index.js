// Notes in Workers KV, unchanged from how they would run on Cloudflare.
// Run: cargo run -p edge-cli -- dev examples/kv-notes
//   curl -X PUT localhost:8787/notes/todo -d 'buy milk'
//   curl localhost:8787/notes/todo
//   curl localhost:8787/            (lists notes, newest metadata included)
//   curl -X DELETE localhost:8787/notes/todo
// Inspect the data from the command line while it runs:
//   cargo run -p edge-cli -- kv list --namespace notes --data-dir examples/kv-notes/.edge
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      const { keys } = await env.NOTES.list({ prefix: "note:" });
      return Response.json(
        keys.map((k) => ({ name: k.name.slice("note:".length), ...k.metadata })),
      );
    }
    const match = url.pathname.match(/^\/notes\/([^/]+)$/);
    if (!match) return new Response("not found\n", { status: 404 });
    const key = `note:${decodeURIComponent(match[1])}`;
    switch (request.method) {
      case "GET": {
        const note = await env.NOTES.get(key);
        return note === null ? new Response("no such note\n", { status: 404 }) : new Response(note);
      }
      case "PUT": {
        const text = await request.text();
        const ttl = url.searchParams.get("ttl");
        await env.NOTES.put(key, text, {
          metadata: { bytes: text.length, saved: new Date().toISOString() },
          ...(ttl ? { expirationTtl: Number(ttl) } : {}),
        });
        return new Response("saved\n", { status: 201 });
      }
      case "DELETE":
        await env.NOTES.delete(key);
        return new Response(null, { status: 204 });
    }
    return new Response("method not allowed\n", { status: 405 });
  },
};
