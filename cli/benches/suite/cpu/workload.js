// The `cpu` scenario's workload: a fixed amount of JSON, regex and integer work that takes a
// few tens of milliseconds on QuickJS-NG. The suite runs this file under plain QuickJS-NG and,
// with a fetch handler appended, on edge, deno and workerd. workload() returns a checksum that
// is the same everywhere.
function workload() {
  // JSON: a generated object, stringified and parsed back, then read.
  const records = [];
  for (let i = 0; i < 1000; i++) {
    records.push({
      id: i,
      name: "item-" + i,
      tags: ["a" + (i % 7), "b" + (i % 13)],
      price: ((i * 37) % 1000) / 10,
      active: i % 3 === 0,
    });
  }
  const text = JSON.stringify({ records });
  const parsed = JSON.parse(text);
  let sum = 0;
  for (const r of parsed.records) {
    sum = (sum + r.id * 31 + r.tags[1].length + Math.round(r.price * 10)) | 0;
  }

  // Regex: every word of a generated text that ends in a digit.
  const words = [];
  for (let i = 0; i < 10000; i++) words.push("w" + ((i * 7919) % 100003).toString(36));
  const prose = words.join(" ");
  const re = /\bw([a-z]+)(\d)\b/g;
  let hits = 0;
  let m;
  while ((m = re.exec(prose)) !== null) hits = (hits + m[1].length * 10 + Number(m[2])) | 0;

  // Integer math: an xorshift generator.
  let x = 2463534242;
  for (let i = 0; i < 200000; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    sum = (sum + (x & 0xffff)) | 0;
  }
  return (sum ^ hits ^ text.length) >>> 0;
}
