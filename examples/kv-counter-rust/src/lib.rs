//! Counts visits per path in KV: `GET /anything` adds one to `anything`'s count and says how
//! many there have been; `GET /` lists every count; `DELETE /anything` forgets one.

use edge_sdk::kv::Kv;
use edge_sdk::{Fetch, Request, Response};

struct Counter;

impl Fetch for Counter {
    fn fetch(request: Request) -> Response {
        let kv = match Kv::open("COUNTS") {
            Ok(kv) => kv,
            Err(e) => return Response::text(500, format!("KV: {e}\n")),
        };
        let path = request.path().trim_start_matches('/').to_string();
        match (request.method.as_str(), path.as_str()) {
            ("GET", "") => {
                let mut lines = String::new();
                for key in kv.keys().unwrap_or_default() {
                    let count = kv.get_text(&key).ok().flatten().unwrap_or_default();
                    lines.push_str(&format!("{key} {count}\n"));
                }
                Response::text(200, lines)
            }
            ("GET", key) => match kv.increment(key, 1) {
                Ok(n) => Response::text(200, format!("/{key} has been visited {n} times\n")),
                Err(e) => Response::text(400, format!("{e}\n")),
            },
            ("DELETE", key) => match kv.delete(key) {
                Ok(()) => Response::new(204, ""),
                Err(e) => Response::text(400, format!("{e}\n")),
            },
            _ => Response::text(405, "GET or DELETE\n"),
        }
    }
}

edge_sdk::export_fetch!(Counter);
