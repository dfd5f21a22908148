// The Deno side of the queues benchmark: the same logic as benches/suite/queues/edge.js, on
// Deno KV's queue (`enqueue` in one atomic commit per request, `listenQueue`).
const kv = await Deno.openKv(Deno.env.get("KV_PATH"));
let received = 0;
let latencies: number[] = [];

kv.listenQueue((t: number) => {
  received++;
  if (latencies.length < 200000) latencies.push(Date.now() - t);
});

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/send": {
        const n = Number(url.searchParams.get("n") ?? "100");
        const t = Date.now();
        const op = kv.atomic();
        for (let i = 0; i < n; i++) op.enqueue(t);
        const res = await op.commit();
        return res.ok ? new Response("ok") : new Response("failed", { status: 500 });
      }
      case "/stats": {
        const out = JSON.stringify({ received, latencies });
        latencies = [];
        return new Response(out);
      }
      case "/reset":
        received = 0;
        latencies = [];
        return new Response("ok");
    }
    return new Response("ok");
  },
};
