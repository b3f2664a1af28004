//! The catalog from the command line: runs and sweeps register themselves, `bench runs`
//! lists, shows, tags, removes and imports; an unreachable catalog costs a run a warning and
//! is an error for `bench runs`.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

fn with_catalog(url: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec![
        "--override".to_string(),
        "catalog.enabled=true".into(),
        "--override".into(),
        format!("catalog.url={url}"),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

fn runs(url: &str, args: &[&str]) -> std::process::Output {
    let a = with_catalog(url, args);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    // `bench runs ...` takes the catalog from the config layers
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bench"));
    cmd.current_dir(root())
        .env_remove("RUST_LOG")
        .arg("runs")
        .args(["--config", "config.yaml"])
        .args(&a[..4])
        .args(&a[4..]);
    cmd.output().unwrap()
}

fn runs_json(url: &str, args: &[&str]) -> Value {
    let o = runs(url, args);
    assert!(o.status.success(), "runs {args:?}: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

fn small_run(dir: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "workload.duration_ms=1000",
        "workload.constant.target_qps=10",
        "dataset.random.output_tokens=8",
        "metrics.enabled=false",
    ];
    a.extend_from_slice(extra);
    let cat = format!("catalog.url={url}");
    let mut args = overrides(&a);
    args.extend(["--override", "catalog.enabled=true", "--override", &cat]);
    let o = bench(dir, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

#[test]
fn runs_register_and_bench_runs_finds_tags_removes_and_imports_them() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/catalog.db", d.path().display());
    let r1 = d.path().join("r1");
    small_run(
        &r1,
        &url,
        &[
            "name=nightly-llama",
            "description=\"the nightly check\"",
            "tags=[nightly, h100]",
        ],
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(r1.join("manifest.json")).unwrap()).unwrap();
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(
        (m["name"].as_str(), m["tags"][1].as_str()),
        (Some("nightly-llama"), Some("h100"))
    );
    let s: Value =
        serde_json::from_slice(&std::fs::read(r1.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["run"]["id"], id.as_str());
    assert_eq!(s["run"]["description"], "the nightly check");
    let report = std::fs::read_to_string(r1.join("report.html")).unwrap();
    assert!(
        report.contains("nightly-llama")
            && report.contains("the nightly check")
            && report.contains(&id)
    );
    // the analysis again in the same directory keeps the id
    let o = bench(&r1, &["--stage", "analysis"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let m2: Value =
        serde_json::from_slice(&std::fs::read(r1.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m2["id"], id.as_str());

    let r2 = d.path().join("r2");
    small_run(&r2, &url, &["name=other", "tags=[adhoc]"]);

    let list = runs_json(&url, &["list", "--json"]);
    assert_eq!(list["total"], 2);
    let e = &list["entries"][1];
    assert_eq!(
        (e["id"].as_str(), e["status"].as_str()),
        (Some(id.as_str()), Some("success"))
    );
    assert_eq!(e["model"], "sim-model");
    assert_eq!(e["endpoint"], "sim");
    assert_eq!(
        (e["dataset_type"].as_str(), e["workload_type"].as_str()),
        (Some("random"), Some("constant"))
    );
    assert_eq!(e["rate"], 10.0);
    assert_eq!(e["metrics"]["completed"], s["counts"]["measured"]);
    assert_eq!(e["metrics"]["ttft_ms_p50"], s["ttft_ms"]["p50"]);
    assert_eq!(e["local_dir"], r1.display().to_string());
    assert!(e["ended_at"].as_str().unwrap() >= e["started_at"].as_str().unwrap());

    assert_eq!(
        runs_json(&url, &["list", "--json", "--tag", "nightly"])["total"],
        1
    );
    assert_eq!(
        runs_json(&url, &["list", "--json", "--search", "NIGHTLY"])["total"],
        1
    );
    assert_eq!(
        runs_json(&url, &["list", "--json", "--status", "failed"])["total"],
        0
    );
    assert_eq!(
        runs_json(
            &url,
            &["list", "--json", "--since", "2000-01-01", "--limit", "1"]
        )["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        runs_json(&url, &["list", "--json", "--model", "sim-model"])["total"],
        2
    );
    let table = text(&runs(&url, &["list"]).stdout);
    assert!(
        table.starts_with("ID")
            && table.contains("nightly-llama")
            && table.contains("page 1 of 1 (2 in all)"),
        "{table}"
    );
    // show by name, and by an id prefix
    let shown = runs_json(&url, &["show", "nightly-llama", "--json"]);
    assert_eq!(shown["id"], id.as_str());
    let shown = text(&runs(&url, &["show", &id[..8]]).stdout);
    assert!(
        shown.contains("the nightly check") && shown.contains("ttft_ms_p50"),
        "{shown}"
    );
    // tags
    let o = runs(&url, &["tag", &id, "+best", "-h100"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        runs_json(&url, &["show", &id, "--json"])["tags"],
        serde_json::json!(["best", "nightly"])
    );
    let o = runs(&url, &["tag", &id, "best"]);
    assert_eq!(o.status.code(), Some(2), "a change without + or -");
    // unknown
    let o = runs(&url, &["show", "no-such-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no run or experiment `no-such-run`"));
    // rm --files removes the entry and the directory
    let o = runs(&url, &["rm", "other", "--files"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!r2.exists());
    assert_eq!(runs_json(&url, &["list", "--json"])["total"], 1);

    // import: a directory of an older bench (no id in its manifest) gets a stable id
    let old = d.path().join("old");
    std::fs::create_dir(&old).unwrap();
    for f in ["summary.json", "requests.parquet", "report.html"] {
        std::fs::copy(r1.join(f), old.join(f)).unwrap();
    }
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(r1.join("manifest.json")).unwrap()).unwrap();
    for k in ["id", "name", "description", "tags"] {
        m.as_object_mut().unwrap().remove(k);
    }
    std::fs::write(old.join("manifest.json"), m.to_string()).unwrap();
    let olds = old.display().to_string();
    for _ in 0..2 {
        let o = runs(&url, &["import", &olds]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let list = runs_json(&url, &["list", "--json"]);
    assert_eq!(list["total"], 2, "imported twice, one entry");
    let imported = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["local_dir"] == olds.as_str())
        .unwrap();
    assert_eq!(imported["status"], "success");
    assert_eq!(
        imported["name"], "nightly-llama",
        "the name from the config the manifest keeps"
    );
    assert_eq!(imported["metrics"]["ttft_ms_p50"], s["ttft_ms"]["p50"]);
    let o = runs(&url, &["import", &d.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not a run directory"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn an_unreachable_catalog_warns_a_run_and_fails_bench_runs() {
    let d = tempfile::tempdir().unwrap();
    let url = "postgres://bench@127.0.0.1:1/nothing";
    let o = small_run(&d.path().join("r"), url, &[]);
    let e = text(&o.stderr);
    assert!(
        e.contains("this run is not in the catalog") && e.contains("127.0.0.1:1"),
        "{e}"
    );
    assert!(d.path().join("r/summary.json").is_file());
    let o = runs(url, &["list"]);
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(
        e.starts_with("error: catalog postgres://bench@127.0.0.1:1/nothing"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_sweep_registers_itself_and_its_runs() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/catalog.db", d.path().display());
    let exp = d.path().join("exp.yaml");
    std::fs::write(
        &exp,
        format!(
            "name: tiny\ndescription: two cells\ntags: [sweep]\nexp_dir: {}\noverrides:\n  workload.duration_ms: 500\n  dataset.random.output_tokens: 4\n  metrics.enabled: false\n  catalog.url: \"{url}\"\n  catalog.enabled: true\naxes:\n  - key: workload.constant.target_qps\n    values: [5, 10]\n",
            d.path().join("exp").display()
        ),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root())
        .args(["sweep"])
        .arg(&exp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let x: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("exp/experiment.json")).unwrap())
            .unwrap();
    let xid = x["id"].as_str().unwrap();
    let list = runs_json(&url, &["list", "--json"]);
    assert_eq!(list["total"], 3);
    let es = list["entries"].as_array().unwrap();
    let xe = es.iter().find(|e| e["kind"] == "experiment").unwrap();
    assert_eq!(
        (
            xe["id"].as_str(),
            xe["name"].as_str(),
            xe["status"].as_str()
        ),
        (Some(xid), Some("tiny"), Some("success"))
    );
    assert_eq!(xe["tags"], serde_json::json!(["sweep"]));
    let runs_of: Vec<&Value> = es.iter().filter(|e| e["experiment_id"] == xid).collect();
    assert_eq!(runs_of.len(), 2);
    let mut rates: Vec<f64> = runs_of
        .iter()
        .map(|e| e["rate"].as_f64().unwrap())
        .collect();
    rates.sort_by(f64::total_cmp);
    assert_eq!(rates, [5.0, 10.0]);
    assert!(runs_of.iter().all(|e| e["status"] == "success"));
}
