// The Deno KV side of the KV benchmark: the same logic as benches/suite/kv/edge.js.
const kv = await Deno.openKv(Deno.env.get("KV_PATH"));

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const k = url.searchParams.get("k")!;
    switch (url.pathname) {
      case "/get": {
        const v = (await kv.get<string>(["kv", k])).value;
        return v === null ? new Response("missing", { status: 404 }) : new Response(v);
      }
      case "/get10": {
        const base = Number(k);
        const values = await Promise.all(
          Array.from({ length: 10 }, (_, i) => kv.get<string>(["kv", `k${(base + i) % 10000}`])),
        );
        const vs = values.map((e) => e.value);
        return vs.includes(null) ? new Response("missing", { status: 404 }) : new Response(vs.join(","));
      }
      case "/put":
        await kv.set(["kv", k], await request.text());
        return new Response("ok");
      case "/fill": {
        const n = Number(url.searchParams.get("n"));
        await Promise.all(Array.from({ length: n }, (_, i) => kv.set(["kv", `k${i}`], `value-${i}`)));
        return new Response("filled");
      }
    }
    return new Response("not found", { status: 404 });
  },
};
