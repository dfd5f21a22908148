// The edge side of the KV benchmark. benches/suite/kv/deno.ts is the same logic on Deno KV.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const k = url.searchParams.get("k");
    switch (url.pathname) {
      case "/get": {
        const v = await env.KV.get(k);
        return v === null ? new Response("missing", { status: 404 }) : new Response(v);
      }
      case "/get10": {
        // Ten independent gets in one request, as a handler assembling a page would do.
        const base = Number(k);
        const values = await Promise.all(
          Array.from({ length: 10 }, (_, i) => env.KV.get(`k${(base + i) % 10000}`)),
        );
        return values.includes(null) ? new Response("missing", { status: 404 }) : new Response(values.join(","));
      }
      case "/put":
        await env.KV.put(k, await request.text());
        return new Response("ok");
      case "/fill": {
        const n = Number(url.searchParams.get("n"));
        await Promise.all(Array.from({ length: n }, (_, i) => env.KV.put(`k${i}`, `value-${i}`)));
        return new Response("filled");
      }
    }
    return new Response("not found", { status: 404 });
  },
};
