// A Workers-style app: `export default { fetch }`, as on Cloudflare Workers.
// Run: cargo run -p edge-cli -- dev examples/hello   (then curl http://127.0.0.1:8787/)
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/":
        return new Response(`${env.GREETING}! You asked for ${request.method} ${url.pathname}\n`, {
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      case "/json":
        return Response.json({ greeting: env.GREETING, id: crypto.randomUUID() });
      case "/stream": {
        // A body produced over time, streamed to the client as it is made.
        const encoder = new TextEncoder();
        let i = 0;
        const body = new ReadableStream({
          async pull(controller) {
            if (i === 5) return controller.close();
            await new Promise((r) => setTimeout(r, 100));
            controller.enqueue(encoder.encode(`chunk ${i++}\n`));
          },
        });
        return new Response(body, { headers: { "content-type": "text/plain" } });
      }
      case "/echo":
        // The request body streams straight back out.
        return new Response(request.body, {
          headers: { "content-type": request.headers.get("content-type") ?? "application/octet-stream" },
        });
      default:
        ctx.waitUntil(Promise.resolve(console.log(`not found: ${url.pathname}`)));
        return new Response("not found\n", { status: 404 });
    }
  },
};
