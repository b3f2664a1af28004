//! `GET /openapi.json`: the API described (OpenAPI 3.1).

use serde_json::{Value, json};

fn q(name: &str, required: bool, ty: &str, desc: &str) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": {"type": ty}, "description": desc})
}

fn id_path() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
}

fn op(summary: &str, params: Vec<Value>) -> Value {
    json!({
        "summary": summary,
        "parameters": params,
        "responses": {
            "200": {"description": "Bud's shape: object, message and the data", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"description": "bad input: {object: error, message, code, field}"},
            "401": {"description": "missing or wrong bearer token"},
            "404": {"description": "unknown id"}
        }
    })
}

/// The spec.
pub fn spec() -> Value {
    let bid = || q("benchmark_id", true, "string", "the run's id (UUID)");
    let workflow_fields = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
            "description": {"type": "string"}, "concurrent_requests": {"type": "integer", "minimum": 1},
            "eval_with": {"enum": ["configuration", "dataset"]},
            "max_input_tokens": {"type": "integer"}, "max_output_tokens": {"type": "integer"},
            "dataset_ids": {"type": "array", "items": {"type": "string"}, "description": "one dataset, or several run as a weighted mix (datasets: + dataset.use)"},
            "dataset_weights": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "description": "relative weights of dataset_ids (default equal)"},
            "workflow_id": {"type": "string"}, "workflow_total_steps": {"type": "integer"},
            "step_number": {"type": "integer"}, "trigger_workflow": {"type": "boolean"},
            "cluster_id": {"type": "string"}, "nodes": {}, "model_id": {"type": "string"},
            "credential_id": {"type": "string"}, "user_confirmation": {"type": "boolean"},
            "run_as_simulation": {"type": "boolean"},
            "endpoint": {"type": "string", "description": "sim (default) or the server's base URL"},
            "model": {"type": "string"}, "api": {"enum": ["openai-chat", "openai-completions", "tgi"]},
            "num_requests": {"type": "integer"}, "api_key_env": {"type": "string"},
            "overrides": {"type": "array", "items": {"type": "string"}, "description": "key=value config overrides"},
            "config": {"type": "object", "description": "a whole bench config instead of Bud's fields"},
            "experiment": {"type": "object", "description": "an experiment file (axes, repeats, search): a sweep instead of one run"}
        }
    });
    json!({
        "openapi": "3.1.0",
        "info": {"title": "bench serve: Bud's benchmark API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/benchmark/run-workflow": {"post": {
                "summary": "Start a run: Bud's wizard fields (step-wise with workflow_id, started at trigger_workflow: true) or a full bench config",
                "requestBody": {"required": true, "content": {"application/json": {"schema": workflow_fields}}},
                "responses": {"200": {"description": "workflow state; benchmark_id once triggered"}, "400": {"description": "bad input, naming the field"}, "401": {"description": "token"}}
            }},
            "/benchmark": {"get": op("List runs and experiments, newest first", vec![
                q("page", false, "integer", "1-based"), q("limit", false, "integer", "1-1000 (20)"),
                q("search", false, "string", "text in name, description, model, id or a tag"),
                q("name", false, "string", "exact name"), q("tag", false, "string", "a tag"),
                q("status", false, "string", "processing, success, failed, interrupted"),
                q("model", false, "string", "served model"), q("kind", false, "string", "run or experiment")])},
            "/benchmark/result": {"get": op("Result percentiles (Bud's field names)", vec![bid()])},
            "/benchmark/request-metrics": {"get": op("Per-request rows, paged", vec![bid(),
                q("page", false, "integer", "1-based"), q("limit", false, "integer", "1-1000 (20)")])},
            "/benchmark/dataset/input-distribution": {"post": op("Bins over prompt length", vec![bid(), q("num_bins", false, "integer", "1-1000 (10)")])},
            "/benchmark/dataset/output-distribution": {"post": op("Bins over output length", vec![bid(), q("num_bins", false, "integer", "1-1000 (10)")])},
            "/benchmark/datasets": {"get": op("Dataset ids for eval_with: dataset", vec![])},
            "/benchmark/{id}/model-cluster-detail": {"get": op("Model, endpoint and server details", vec![id_path()])},
            "/benchmark/{id}/analysis/field1_vs_field2": {"post": op("Pairs of two per-request fields", vec![id_path(),
                q("field1", true, "string", "ttft, tpot, latency, prompt_len, output_len, req_output_throughput, itl"),
                q("field2", true, "string", "same list")])},
            "/benchmark/{id}/events": {"get": op("The run's steps and their status", vec![id_path()])},
            "/benchmark/{id}/files/{path}": {"get": op("A file of the run's directory (report.html, summary.json, plots/...)", vec![id_path(),
                json!({"name": "path", "in": "path", "required": true, "schema": {"type": "string"}})])},
            "/openapi.json": {"get": op("This document", vec![])}
        }
    })
}
