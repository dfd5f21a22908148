//! A job queue: `POST /jobs` queues the body as a job; the queue handler "does" each job
//! (upper-cases it) and stores the result in KV under `job:<id>`; a job whose text is `fail`
//! is retried until the queue gives up on it. The cron stores when it last ran under
//! `cron:last`. `GET /` lists what KV holds.

use edge_sdk::kv::Kv;
use edge_sdk::queue::Queue;
use edge_sdk::{
    Consumer, Fetch, MessageBatch, Request, Response, Scheduled, ScheduledController,
};

struct Jobs;

impl Fetch for Jobs {
    fn fetch(request: Request) -> Response {
        match (request.method.as_str(), request.path()) {
            ("POST", "/jobs") => match Queue::new("JOBS").send_text(request.text()) {
                Ok(()) => Response::text(202, "queued\n"),
                Err(e) => Response::text(500, format!("{e}\n")),
            },
            ("GET", "/") => {
                let Ok(kv) = Kv::open("RESULTS") else {
                    return Response::text(500, "no RESULTS binding\n");
                };
                let mut lines = String::new();
                for key in kv.keys().unwrap_or_default() {
                    let value = kv.get_text(&key).ok().flatten().unwrap_or_default();
                    lines.push_str(&format!("{key} = {value}\n"));
                }
                Response::text(200, lines)
            }
            _ => Response::text(404, "POST /jobs or GET /\n"),
        }
    }
}

impl Consumer for Jobs {
    fn queue(batch: &MessageBatch) -> Result<(), String> {
        let kv = Kv::open("RESULTS").map_err(|e| e.to_string())?;
        for message in &batch.messages {
            let job = message.text();
            if job == "fail" {
                println!("job {} failed (attempt {})", message.id, message.attempts);
                batch.retry(message, None);
                continue;
            }
            kv.put(&format!("job:{}", message.id), job.to_uppercase())
                .map_err(|e| e.to_string())?;
            batch.ack(message);
        }
        Ok(())
    }
}

impl Scheduled for Jobs {
    fn scheduled(controller: ScheduledController) -> Result<(), String> {
        let kv = Kv::open("RESULTS").map_err(|e| e.to_string())?;
        kv.put("cron:last", format!("{} {}", controller.cron, controller.scheduled_time))
            .map_err(|e| e.to_string())
    }
}

edge_sdk::export_fetch!(Jobs);
edge_sdk::export_queue!(Jobs);
edge_sdk::export_scheduled!(Jobs);
