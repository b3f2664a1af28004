//! A ComfyUI-compatible route: `POST /runsync` with `{"input": {"workflow_json": {...}}}`, as
//! Vast's and RunPod's serverless ComfyUI workers take it.
//!
//! The image's size is read from the workflow (a node with numeric `width` and `height`
//! inputs, such as `EmptyLatentImage`) and its steps from a node with a numeric `steps` input
//! (`KSampler`). A job takes `sim.image_base_ms` + `sim.image_ms_per_mpixel_step` x megapixels
//! x steps (scaled by `sim.time_scale`), and jobs run one at a time, as one ComfyUI process
//! runs them: concurrent requests queue, which is why Vast benchmarks ComfyUI sequentially.
//! The answer is one JSON body: `status: COMPLETED`, `delayTime` (ms queued) and
//! `executionTime` (ms generating), and a tiny placeholder image.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The job's (width, height, steps) from a ComfyUI workflow in API format.
pub(crate) fn job_size(workflow: &Value) -> Result<(u64, u64, u64), String> {
    let nodes = workflow
        .as_object()
        .ok_or("input.workflow_json is not an object of nodes")?;
    let input = |n: &Value, k: &str| n.get("inputs")?.get(k)?.as_u64();
    let size = nodes
        .values()
        .find_map(|n| Some((input(n, "width")?, input(n, "height")?)));
    let steps = nodes.values().find_map(|n| input(n, "steps"));
    match (size, steps) {
        (Some((w, h)), Some(s)) if w > 0 && h > 0 && s > 0 => Ok((w, h, s)),
        (None, _) => Err("no node of the workflow has numeric width and height inputs".into()),
        _ => Err("no node of the workflow has a numeric steps input".into()),
    }
}

/// Model time of one job, ms.
pub(crate) fn job_ms(base_ms: f64, ms_per_mpixel_step: f64, (w, h, s): (u64, u64, u64)) -> f64 {
    base_ms + ms_per_mpixel_step * (w * h) as f64 / 1e6 * s as f64
}

/// Handles one `/runsync` body: waits for the one ComfyUI "process", then for the job.
pub(crate) async fn runsync(sh: &super::server::Shared, body: &[u8]) -> (u16, String) {
    let arrived = Instant::now();
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return (
                400,
                json!({"error": format!("body is not JSON: {e}")}).to_string(),
            );
        }
    };
    let Some(wf) = v.pointer("/input/workflow_json") else {
        return (
            400,
            json!({"error": "missing input.workflow_json"}).to_string(),
        );
    };
    let size = match job_size(wf) {
        Ok(s) => s,
        Err(e) => return (400, json!({"error": e}).to_string()),
    };
    let ms = job_ms(sh.comfy.base_ms, sh.comfy.ms_per_mpixel_step, size);
    let _one_at_a_time = sh.comfy.busy.lock().await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(ms * sh.comfy.time_scale / 1e3)).await;
    let id = sh.next_id.fetch_add(1, Relaxed);
    let ms_of = |d: Duration| (d.as_secs_f64() * 1e3).round() as u64;
    let out = json!({
        "id": format!("sim-{id}"),
        "status": "COMPLETED",
        "delayTime": ms_of(started - arrived),
        "executionTime": ms_of(started.elapsed()),
        "output": {"images": [{"filename": format!("bench_{id:05}_.png"), "type": "base64",
                               "data": "iVBORw0KGgo="}]},
    });
    (200, out.to_string())
}

/// The ComfyUI route's settings and its one-job-at-a-time lock.
#[derive(Debug)]
pub(crate) struct Comfy {
    pub base_ms: f64,
    pub ms_per_mpixel_step: f64,
    pub time_scale: f64,
    pub busy: tokio::sync::Mutex<()>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_steps_come_from_the_workflow() {
        let wf = json!({"3": {"class_type": "KSampler", "inputs": {"steps": 20, "seed": 1}},
                        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768}}});
        assert_eq!(job_size(&wf), Ok((512, 768, 20)));
        assert_eq!(job_ms(20.0, 50.0, (1000, 1000, 10)), 520.0);
        let e = job_size(&json!({"3": {"inputs": {"steps": 20}}})).unwrap_err();
        assert!(e.contains("width and height"), "{e}");
        let e = job_size(&json!({"5": {"inputs": {"width": 8, "height": 8}}})).unwrap_err();
        assert!(e.contains("steps"), "{e}");
    }
}
