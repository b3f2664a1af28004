//! `bench k8s render CONFIG_OR_EXPERIMENT --out DIR`: plain Kubernetes manifests for a sharded
//! run (docs/KUBERNETES.md). No operator and no controller: the cluster's own Job machinery
//! runs the shards, and the binary only writes YAML.
//!
//! A config renders into:
//! - `00-config.yaml`: a ConfigMap with the resolved config (`client.shard` and
//!   `client.start_at` set, secrets redacted) and the workload, when it fits (a ConfigMap holds
//!   at most 1 MiB; a larger workload is generated in each pod from the same config and seed,
//!   and the merge checks that every shard's is the same);
//! - `01-results-pvc.yaml`: the shared results volume (not with `--storage`);
//! - `10-shards-job.yaml`: an Indexed Job, one pod per shard, spread over nodes, each waiting
//!   for the endpoint in an init container and then for the shared start;
//! - `20-merge-job.yaml`: `bench merge` of the shards, applied when the shards are done;
//! - `run.sh`: the steps in order with `kubectl`.
//!
//! An experiment renders each run's ConfigMap and Jobs, and an Argo Workflow
//! (`30-workflow.yaml`) that runs them one after another: shards, then merge, then the next.

use std::path::PathBuf;

use bench_config::{Config, Sources};
use bench_types::stage::exit;
use serde_json::{Value, json};

use crate::driver::Failure;

/// A ConfigMap's data is at most 1 MiB; leave room for the config and the object itself.
const CONFIGMAP_WORKLOAD_MAX: u64 = 900 * 1024;
/// Where the config map is mounted in the pods.
const CONFIG_DIR: &str = "/etc/bench";
/// Where results are written in the pods.
const RESULTS_DIR: &str = "/results";
/// The non-root user of the image (Dockerfile).
const USER_ID: u64 = 10001;

/// What `bench k8s render` was asked.
#[derive(Debug, Clone)]
pub struct RenderArgs {
    /// A run config or an experiment file.
    pub input: PathBuf,
    /// Where the manifests go.
    pub out: PathBuf,
    /// Shards per run.
    pub shards: u32,
    /// The bench image.
    pub image: String,
    /// The namespace of every object.
    pub namespace: String,
    /// `s3://bucket/prefix`: results to object storage instead of a volume.
    pub storage: Option<String>,
    /// The shared start (RFC 3339 UTC); `None`: ten minutes after rendering.
    pub start_at: Option<String>,
    /// CPU request (and limit) of a shard pod.
    pub cpu: String,
    /// Memory request (and limit) of a shard pod.
    pub memory: String,
    /// Image of the init container that waits for the endpoint.
    pub wait_image: String,
    /// `--override`s of the command line.
    pub overrides: Vec<String>,
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::new(exit::BAD_INPUT, msg)
}

/// One run to render: its object name, resolved config and workload.
struct Run {
    name: String,
    tree: Value,
    workload: Option<String>,
}

/// A Kubernetes object name (RFC 1123 label) from `s`: lower case, `-` for the rest, at most
/// `max` characters.
pub fn k8s_name(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let t: String = out.trim_matches('-').chars().take(max).collect();
    let t = t.trim_end_matches('-').to_string();
    if t.is_empty() { "bench".into() } else { t }
}

/// Renders the manifests; returns the files written.
pub fn render(a: &RenderArgs) -> Result<Vec<PathBuf>, Failure> {
    if a.shards == 0 {
        return Err(bad("--shards: 0 must be >= 1"));
    }
    let start = match &a.start_at {
        Some(s) => {
            let t: jiff::Timestamp = s
                .parse()
                .map_err(|e| bad(format!("--start-at `{s}`: not an RFC 3339 UTC time ({e})")))?;
            t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        }
        None => (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    };
    if let Some(s) = &a.storage
        && !s.starts_with("s3://")
    {
        return Err(bad(format!("--storage `{s}`: expected s3://bucket/prefix")));
    }
    let text = std::fs::read_to_string(&a.input)
        .map_err(|e| bad(format!("{}: {e}", a.input.display())))?;
    let doc: Value =
        serde_yaml::from_str(&text).map_err(|e| bad(format!("{}: {e}", a.input.display())))?;
    let is_experiment = doc.get("axes").is_some();
    let (runs, experiment) = if is_experiment {
        let e = crate::sweep::file::read(&a.input).map_err(|errs| bad(errs.join("\n")))?;
        if e.search.is_some() {
            return Err(bad(format!(
                "{}: a capacity search chooses its runs as it goes; render fixed loads (axes) instead",
                a.input.display()
            )));
        }
        let plan =
            crate::sweep::plan::plan(&e, &a.overrides).map_err(|errs| bad(errs.join("\n")))?;
        let exp = k8s_name(&e.name, 30);
        let runs = plan
            .runs
            .iter()
            .enumerate()
            .map(|(i, p)| Run {
                name: format!("{exp}-{i}"),
                tree: p.tree.clone(),
                workload: None,
            })
            .collect::<Vec<_>>();
        (runs, Some(exp))
    } else {
        let r = bench_config::load(&Sources {
            files: vec![a.input.clone()],
            overrides: a.overrides.clone(),
            env: false,
        })
        .map_err(|e| bad(e.to_string()))?;
        let name = k8s_name(r.tree["name"].as_str().unwrap_or("bench"), 40);
        let workload = workload_text(&r.config)?;
        (
            vec![Run {
                name,
                tree: r.tree,
                workload,
            }],
            None,
        )
    };
    std::fs::create_dir_all(&a.out)
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", a.out.display())))?;
    let mut written = Vec::new();
    let mut write = |name: &str, docs: &[Value]| -> Result<(), Failure> {
        let p = a.out.join(name);
        let text: Vec<String> = docs
            .iter()
            .map(|d| serde_yaml::to_string(d).expect("yaml"))
            .collect();
        std::fs::write(&p, text.join("---\n"))
            .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", p.display())))?;
        written.push(p);
        Ok(())
    };
    let group = experiment.clone().unwrap_or_else(|| runs[0].name.clone());
    let configs: Vec<Value> = runs.iter().map(|r| config_map(a, r, &start)).collect();
    write("00-config.yaml", &configs)?;
    if a.storage.is_none() {
        write("01-results-pvc.yaml", &[pvc(a, &group)])?;
    }
    // in a workflow, each run's start is set when its turn comes
    let start_param = experiment.as_ref().map(|_| "{{inputs.parameters.start}}");
    let shards: Vec<Value> = runs
        .iter()
        .map(|r| shards_job(a, r, &group, start_param))
        .collect();
    let merges: Vec<Value> = runs.iter().map(|r| merge_job(a, r, &group)).collect();
    match &experiment {
        None => {
            write("10-shards-job.yaml", &shards)?;
            write("20-merge-job.yaml", &merges)?;
            let script = run_script(a, &runs[0].name);
            let p = a.out.join("run.sh");
            std::fs::write(&p, script)
                .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", p.display())))?;
            written.push(p);
        }
        Some(exp) => {
            write(
                "30-workflow.yaml",
                &[workflow(a, exp, &runs, &shards, &merges)],
            )?;
        }
    }
    Ok(written)
}

/// The workload of a config, generated here, when it fits a ConfigMap.
fn workload_text(cfg: &Config) -> Result<Option<String>, Failure> {
    let tmp = std::env::temp_dir().join(format!("bench-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", tmp.display())))?;
    let res = (|| {
        if cfg.workload.needs_dataset() {
            bench_dataset::run(cfg, &tmp).map_err(|e| bad(format!("dataset stage: {e}")))?;
        }
        bench_workload::run(cfg, &tmp).map_err(|e| bad(format!("workload stage: {e}")))?;
        let p = tmp.join(bench_types::files::WORKLOAD);
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(u64::MAX);
        if size > CONFIGMAP_WORKLOAD_MAX {
            tracing::warn!(
                "k8s: workload.jsonl is {:.1} MiB, more than a ConfigMap holds: each pod generates it from the config (same seed, same file; the merge checks)",
                size as f64 / (1 << 20) as f64
            );
            return Ok(None);
        }
        std::fs::read_to_string(&p)
            .map(Some)
            .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", p.display())))
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    res
}

fn labels(instance: &str, role: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "bench",
        "app.kubernetes.io/instance": instance,
        "bench.dev/role": role,
    })
}

fn meta(a: &RenderArgs, name: &str, instance: &str, role: &str) -> Value {
    json!({"name": name, "namespace": a.namespace, "labels": labels(instance, role)})
}

fn config_map(a: &RenderArgs, r: &Run, start: &str) -> Value {
    let mut tree = bench_types::manifest::redacted(&r.tree);
    tree["client"]["shard"] = json!({"index": 0, "count": a.shards});
    tree["client"]["start_at"] = json!(start);
    tree["client"]["progress"] = json!(false);
    if let Some(o) = tree.as_object_mut() {
        o.remove("run_dir");
        // the bases are resolved into the tree already
        o.remove("base");
    }
    let mut data = serde_json::Map::new();
    data.insert(
        "config.yaml".into(),
        json!(serde_yaml::to_string(&tree).expect("yaml")),
    );
    if let Some(w) = &r.workload {
        data.insert("workload.jsonl".into(), json!(w));
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(a, &format!("{}-config", r.name), &r.name, "config"),
        "data": data,
    })
}

fn pvc(a: &RenderArgs, group: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(a, &format!("{group}-results"), group, "results"),
        "spec": {
            // every shard pod writes its own directory from its own node
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "20Gi"}},
        },
    })
}

/// The results volume: the shared claim, or a pod-local directory uploaded to storage.
fn results_volume(a: &RenderArgs, group: &str) -> Value {
    match &a.storage {
        None => {
            json!({"name": "results", "persistentVolumeClaim": {"claimName": format!("{group}-results")}})
        }
        Some(_) => json!({"name": "results", "emptyDir": {}}),
    }
}

/// Credentials by reference: the API key's variable and the storage keys from Secrets.
fn credentials(a: &RenderArgs, r: &Run) -> (Vec<Value>, Vec<Value>) {
    let mut env = Vec::new();
    if let Some(var) = r.tree["client"]["api_key_env"].as_str() {
        env.push(json!({
            "name": var,
            "valueFrom": {"secretKeyRef": {"name": "bench-endpoint", "key": var}},
        }));
    }
    let env_from = match &a.storage {
        Some(_) => vec![json!({"secretRef": {"name": "bench-storage"}})],
        None => Vec::new(),
    };
    (env, env_from)
}

fn security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    })
}

fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The shard's shell step: its directory, the workload from the ConfigMap (or generated),
/// then the client on the shared start.
fn shard_script(a: &RenderArgs, r: &Run, start: Option<&str>) -> String {
    let (dir, storage) = match &a.storage {
        None => (
            format!(
                "{RESULTS_DIR}/{}/shards/shard-$JOB_COMPLETION_INDEX",
                r.name
            ),
            String::new(),
        ),
        Some(url) => (
            format!("{RESULTS_DIR}/shard-$JOB_COMPLETION_INDEX"),
            format!(
                " --override storage.url={}/{}/shards",
                url.trim_end_matches('/'),
                r.name
            ),
        ),
    };
    let stages = if r.workload.is_some() {
        format!("cp {CONFIG_DIR}/workload.jsonl \"$RUN\"/\nSTAGES=client")
    } else {
        "STAGES=dataset,workload,client".to_string()
    };
    let start = start
        .map(|s| format!(" --override client.start_at={s}"))
        .unwrap_or_default();
    format!(
        "set -eu\nRUN=\"{dir}\"\nmkdir -p \"$RUN\"\n{stages}\nexec bench --config {CONFIG_DIR}/config.yaml --stage \"$STAGES\" --override run_dir=\"$RUN\"{storage}{start}\n"
    )
}

/// The shards' Indexed Job; `start` overrides the ConfigMap's `client.start_at` (a workflow
/// sets it when the run's turn comes).
fn shards_job(a: &RenderArgs, r: &Run, group: &str, start: Option<&str>) -> Value {
    let (env, env_from) = credentials(a, r);
    let mut init = Vec::new();
    if let Some(url) = r.tree["client"]["endpoint"]
        .as_str()
        .filter(|u| u.contains("://"))
    {
        let root = bench_client::preflight::root_url(url);
        init.push(json!({
            "name": "wait-for-endpoint",
            "image": a.wait_image,
            "command": ["sh", "-c", format!(
                "until curl -sf -o /dev/null --max-time 5 {root}/v1/models || curl -sf -o /dev/null --max-time 5 {root}/health; do echo waiting for {root}; sleep 5; done"
            )],
            "securityContext": security(),
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        }));
    }
    let mut container = json!({
        "name": "shard",
        "image": a.image,
        "command": ["sh", "-c", shard_script(a, r, start)],
        "resources": {
            "requests": {"cpu": a.cpu, "memory": a.memory},
            "limits": {"cpu": a.cpu, "memory": a.memory},
        },
        "securityContext": security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": true},
            {"name": "results", "mountPath": RESULTS_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    });
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    if !env_from.is_empty() {
        container["envFrom"] = json!(env_from);
    }
    let role_labels = labels(&r.name, "shard");
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(a, &format!("{}-shards", r.name), &r.name, "shard"),
        "spec": {
            "completionMode": "Indexed",
            "completions": a.shards,
            "parallelism": a.shards,
            // a retried shard would start after the shared start: no retries, and one shard's
            // failure does not stop the others (the merge names what it did not send)
            "backoffLimitPerIndex": 0,
            "maxFailedIndexes": a.shards,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": role_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pod_security(),
                    "affinity": {"podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [{
                            "weight": 100,
                            "podAffinityTerm": {
                                "labelSelector": {"matchLabels": labels(&r.name, "shard")},
                                "topologyKey": "kubernetes.io/hostname",
                            },
                        }],
                    }},
                    "initContainers": init,
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": format!("{}-config", r.name)}},
                        results_volume(a, group),
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    })
}

fn merge_job(a: &RenderArgs, r: &Run, group: &str) -> Value {
    let (_, env_from) = credentials(a, r);
    let (input, out) = match &a.storage {
        None => (
            format!("{RESULTS_DIR}/{}/shards", r.name),
            format!("{RESULTS_DIR}/{}/merged", r.name),
        ),
        Some(url) => (
            format!("{}/{}/shards", url.trim_end_matches('/'), r.name),
            format!("{RESULTS_DIR}/merged"),
        ),
    };
    let mut args = vec![json!("merge"), json!(input), json!("--out"), json!(out)];
    if let Some(url) = &a.storage {
        // the merged run lands beside its shards: <url>/<run>/merged
        args.push(json!("--override"));
        args.push(json!(format!(
            "storage.url={}/{}",
            url.trim_end_matches('/'),
            r.name
        )));
    }
    let mut container = json!({
        "name": "merge",
        "image": a.image,
        "args": args,
        "resources": {"requests": {"cpu": "1", "memory": a.memory}, "limits": {"memory": a.memory}},
        "securityContext": security(),
        "volumeMounts": [
            {"name": "results", "mountPath": RESULTS_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    });
    if !env_from.is_empty() {
        container["envFrom"] = json!(env_from);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(a, &format!("{}-merge", r.name), &r.name, "merge"),
        "spec": {
            "backoffLimit": 1,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels(&r.name, "merge")},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [results_volume(a, group), {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    })
}

/// An Argo Workflow running the experiment's runs one after another, each its shards Job then
/// its merge Job (created as resources; the workflow's service account may create Jobs).
fn workflow(a: &RenderArgs, exp: &str, runs: &[Run], shards: &[Value], merges: &[Value]) -> Value {
    let mut templates = vec![
        json!({
            "name": "experiment",
            "steps": runs.iter().map(|r| json!([{"name": r.name, "template": r.name}])).collect::<Vec<_>>(),
        }),
        // the shared start of a run: two minutes after its turn comes (pods scheduled, images
        // pulled, the endpoint checked), printed as the step's result
        json!({
            "name": "schedule",
            "container": {
                "image": a.image,
                "command": ["date", "-u", "-d", "+120 seconds", "+%Y-%m-%dT%H:%M:%SZ"],
                "securityContext": security(),
            },
        }),
    ];
    for ((r, s), m) in runs.iter().zip(shards).zip(merges) {
        templates.push(json!({
            "name": r.name,
            "steps": [
                [{"name": "schedule", "template": "schedule"}],
                [{
                    "name": "shards",
                    "template": format!("{}-shards", r.name),
                    "arguments": {"parameters": [{"name": "start", "value": "{{steps.schedule.outputs.result}}"}]},
                }],
                [{"name": "merge", "template": format!("{}-merge", r.name)}],
            ],
        }));
        templates.push(json!({
            "name": format!("{}-shards", r.name),
            "inputs": {"parameters": [{"name": "start"}]},
            "resource": {
                "action": "create",
                // every shard succeeded; a failed one stops the workflow at this run (its
                // merge Job, applied by hand once the others end, names it)
                "successCondition": format!("status.succeeded == {}", a.shards),
                "failureCondition": "status.failed > 0",
                "manifest": serde_yaml::to_string(s).expect("yaml"),
            },
        }));
        templates.push(json!({
            "name": format!("{}-merge", r.name),
            "resource": {
                "action": "create",
                "successCondition": "status.succeeded > 0",
                "failureCondition": "status.failed > 1",
                "manifest": serde_yaml::to_string(m).expect("yaml"),
            },
        }));
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": format!("{exp}-"), "namespace": a.namespace, "labels": labels(exp, "experiment")},
        "spec": {
            "entrypoint": "experiment",
            "serviceAccountName": "bench-runner",
            "parallelism": 1,
            "templates": templates,
        },
    })
}

fn run_script(a: &RenderArgs, run: &str) -> String {
    let ns = &a.namespace;
    let pvc = if a.storage.is_none() {
        " -f 01-results-pvc.yaml"
    } else {
        ""
    };
    format!(
        r#"#!/bin/sh
# Runs {run} in namespace {ns}: config, shards, then the merge once every shard has ended.
# The shards wait for client.start_at in 00-config.yaml: apply before it, or render again.
set -eu
cd "$(dirname "$0")"
kubectl -n {ns} apply -f 00-config.yaml{pvc}
kubectl -n {ns} apply -f 10-shards-job.yaml
# Complete, or Failed once every index has ended (backoffLimitPerIndex: 0)
until kubectl -n {ns} get job {run}-shards -o jsonpath='{{.status.conditions[*].type}}' | grep -Eq 'Complete|Failed'; do
  sleep 10
done
kubectl -n {ns} apply -f 20-merge-job.yaml
kubectl -n {ns} wait --for=condition=complete --timeout=1h job/{run}-merge
kubectl -n {ns} logs job/{run}-merge
"#
    )
}

/// The `K8s` arguments' render, for the driver.
pub fn run(a: &RenderArgs) -> Result<i32, Failure> {
    let files = render(a)?;
    for f in &files {
        println!("{}", f.display());
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::k8s_name;

    #[test]
    fn object_names_are_rfc_1123_labels() {
        assert_eq!(k8s_name("Llama 3.1 / 70B__run", 40), "llama-3-1-70b-run");
        assert_eq!(k8s_name("--", 40), "bench");
        assert_eq!(k8s_name("a-very-long-name-that-goes-on", 10), "a-very-lon");
        assert_eq!(k8s_name("abcdefghi-jkl", 10), "abcdefghi");
    }
}
