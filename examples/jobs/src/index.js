// A job queue, as a Cloudflare Worker would write it:
//   curl -X POST localhost:8787/jobs -d 'resize cat.png'   → 202 queued (durable)
//   curl localhost:8787/                                    → the jobs done so far
// The queue handler takes the jobs in batches and records each in KV; the cron logs a count.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/jobs") {
      const task = await request.text();
      await env.JOBS.send({ task, queuedAt: Date.now() });
      return new Response("queued\n", { status: 202 });
    }
    const { keys } = await env.RESULTS.list({ prefix: "done:" });
    const lines = keys.map((k) => `${k.name.slice(5)} waited ${k.metadata.waitedMs} ms`);
    return new Response(`${keys.length} jobs done\n${lines.join("\n")}\n`);
  },

  async queue(batch, env) {
    for (const message of batch.messages) {
      const { task, queuedAt } = message.body;
      await env.RESULTS.put(`done:${message.id}`, task, {
        metadata: { waitedMs: Date.now() - queuedAt },
      });
      message.ack();
    }
  },

  async scheduled(controller, env) {
    const { keys } = await env.RESULTS.list({ prefix: "done:" });
    console.log(`cron ${controller.cron}: ${keys.length} jobs done so far`);
  },
};
