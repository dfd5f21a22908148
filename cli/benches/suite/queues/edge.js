// The edge side of the queues benchmark: the same logic as benches/suite/queues/deno.ts.
// POST /send?n=N sends N messages in one sendBatch (each body the send time, ms); the consumer
// counts what it receives and keeps each message's send→handler latency.
let received = 0;
let latencies = [];

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/send": {
        const n = Number(url.searchParams.get("n") ?? "100");
        const t = Date.now();
        await env.Q.sendBatch(Array.from({ length: n }, () => ({ body: t })));
        return new Response("ok");
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

  async queue(batch) {
    const now = Date.now();
    for (const m of batch.messages) {
      received++;
      if (latencies.length < 200000) latencies.push(now - m.body);
    }
  },
};
