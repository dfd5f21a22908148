// The Deno side of the Cache API benchmark: the same logic as benches/suite/cache/edge.js
// (Deno's Cache API, SQLite-backed, under `deno serve`).
const ORIGIN = "https://bench.test";

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const k = url.searchParams.get("k")!;
    const cache = await caches.open("bench");
    switch (url.pathname) {
      case "/match": {
        const hit = await cache.match(`${ORIGIN}/${k}`);
        return hit ?? new Response("missing", { status: 404 });
      }
      case "/put":
        await cache.put(`${ORIGIN}/${k}`, new Response(await request.text(), { headers: { "cache-control": "max-age=3600" } }));
        return new Response("ok");
      case "/fill": {
        const n = Number(url.searchParams.get("n"));
        for (let i = 0; i < n; i++) {
          await cache.put(`${ORIGIN}/k${i}`, new Response(`value-${i}`, { headers: { "cache-control": "max-age=3600" } }));
        }
        return new Response("filled");
      }
    }
    return new Response("not found", { status: 404 });
  },
};
