// The `json` scenario's handler: parses the 4 KB JSON body json.lua posts, reads every item and
// answers a small JSON summary. A GET answers "ready" (the suite's check that a server is up).
export default {
  async fetch(request) {
    if (request.method !== "POST") return new Response("ready");
    const data = await request.json();
    let total = 0;
    let longest = "";
    for (const item of data.items) {
      total += item.value;
      if (item.name.length > longest.length) longest = item.name;
    }
    return Response.json({ tag: data.tag, count: data.items.length, total, longest });
  },
};
