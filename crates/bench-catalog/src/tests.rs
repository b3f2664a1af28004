//! The catalog's behaviour, the same tests on SQLite and on a real PostgreSQL server.

use super::*;
use bench_testkit::services::Postgres;

fn entry(id: &str, name: &str, started: &str, tags: &[&str]) -> Entry {
    Entry {
        id: id.into(),
        kind: Kind::Run,
        name: name.into(),
        description: format!("{name} described"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        status: Status::Processing,
        error: None,
        model: Some(
            if name.contains("llama") {
                "llama"
            } else {
                "qwen"
            }
            .into(),
        ),
        endpoint: Some("sim".into()),
        api: Some("openai-chat".into()),
        dataset_type: Some("random".into()),
        workload_type: Some("constant".into()),
        concurrency: None,
        rate: Some(2.5),
        started_at: started.into(),
        ended_at: None,
        metrics: None,
        local_dir: Some(format!("/runs/{name}")),
        remote: None,
        experiment_id: None,
    }
}

async fn behaves(url: &str) {
    let c = Catalog::open(url).await.unwrap();
    // opening again (migrations already applied) is fine
    Catalog::open(url).await.unwrap();
    for (i, name) in ["alpha-llama", "beta", "gamma-llama", "delta"]
        .iter()
        .enumerate()
    {
        let mut e = entry(
            &format!("id-{i}"),
            name,
            &format!("2026-12-0{}T10:00:00.000000Z", i + 1),
            if i % 2 == 0 {
                &["h100", "nightly"]
            } else {
                &["h100"]
            },
        );
        if i == 0 {
            // a closed loop: no rate (a NULL number first, then numbers again: PostgreSQL's
            // prepared statement must take both)
            (e.concurrency, e.rate) = (Some(8), None);
        }
        c.upsert(&e).await.unwrap();
    }
    let all = c.list(&Filter::all(10)).await.unwrap();
    assert_eq!(all.total, 4);
    let names: Vec<&str> = all.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["delta", "gamma-llama", "beta", "alpha-llama"],
        "newest first"
    );
    let mut first = entry(
        "id-0",
        "alpha-llama",
        "2026-12-01T10:00:00.000000Z",
        &["h100", "nightly"],
    );
    (first.concurrency, first.rate) = (Some(8), None);
    assert_eq!(all.entries[3], first, "round trip");

    let page = |f: Filter| {
        let c = c.clone();
        async move { c.list(&f).await.unwrap() }
    };
    let p2 = page(Filter {
        page: 2,
        limit: 3,
        ..Filter::all(3)
    })
    .await;
    assert_eq!((p2.total, p2.entries.len(), p2.pages()), (4, 1, 2));
    assert_eq!(p2.entries[0].name, "alpha-llama");
    let s = page(Filter {
        search: Some("LLAMA".into()),
        ..Filter::all(10)
    })
    .await;
    assert_eq!(s.total, 2, "search is case-insensitive over name and model");
    let t = page(Filter {
        tag: Some("nightly".into()),
        ..Filter::all(10)
    })
    .await;
    assert_eq!(t.total, 2);
    let since = page(Filter {
        since: Some("2026-12-03".into()),
        ..Filter::all(10)
    })
    .await;
    assert_eq!(since.total, 2);
    let m = page(Filter {
        model: Some("qwen".into()),
        ..Filter::all(10)
    })
    .await;
    assert_eq!(m.total, 2);

    // finish, tags, remote copy, lookup by name, removal
    let metrics = serde_json::json!({"ttft_ms_p50": 12.5, "completed": 40});
    c.finish(
        "id-1",
        Status::Failed,
        Some("thresholds failed"),
        Some(&metrics),
    )
    .await
    .unwrap();
    let b = c.get("beta").await.unwrap().unwrap();
    assert_eq!((b.id.as_str(), b.status), ("id-1", Status::Failed));
    assert_eq!(b.error.as_deref(), Some("thresholds failed"));
    assert_eq!(b.metrics, Some(metrics));
    assert!(b.ended_at.is_some());
    let f = page(Filter {
        status: Some(Status::Failed),
        ..Filter::all(10)
    })
    .await;
    assert_eq!(f.total, 1);
    let tags = c
        .tag("id-1", &["best".into()], &["h100".into()])
        .await
        .unwrap();
    assert_eq!(tags, ["best"]);
    assert_eq!(
        page(Filter {
            tag: Some("best".into()),
            ..Filter::all(10)
        })
        .await
        .total,
        1
    );
    assert_eq!(
        page(Filter {
            tag: Some("h100".into()),
            ..Filter::all(10)
        })
        .await
        .total,
        3
    );
    let r = RemoteCopy {
        url: "s3://b/p/beta".into(),
        status: "complete".into(),
    };
    c.set_remote("id-1", &r).await.unwrap();
    assert_eq!(c.get("id-1").await.unwrap().unwrap().remote, Some(r));
    assert!(
        c.finish("nope", Status::Success, None, None)
            .await
            .unwrap_err()
            .to_string()
            .contains("no run or experiment with id nope")
    );
    assert!(c.remove("id-1").await.unwrap());
    assert!(!c.remove("id-1").await.unwrap());
    assert_eq!(c.get("beta").await.unwrap(), None);
    assert_eq!(
        page(Filter {
            tag: Some("best".into()),
            ..Filter::all(10)
        })
        .await
        .total,
        0
    );
    c.close().await;
}

/// Many writers at once (separate pools, as separate processes would be): every write lands.
async fn concurrent_writers(url: &str) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let c = Catalog::open(&url).await.unwrap();
            for i in 0..25 {
                let id = format!("w{w}-{i}");
                c.upsert(&entry(&id, &format!("run-{w}"), &now(), &["load"]))
                    .await
                    .unwrap();
                c.finish(&id, Status::Success, None, None).await.unwrap();
                c.tag(&id, &[format!("w{w}")], &[]).await.unwrap();
            }
            c.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = Catalog::open(url).await.unwrap();
    let p = c
        .list(&Filter {
            status: Some(Status::Success),
            ..Filter::all(1000)
        })
        .await
        .unwrap();
    assert_eq!(p.total, 200);
    assert!(p.entries.iter().all(|e| e.tags.len() == 2));
    c.close().await;
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sqlite_catalog() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/catalog.db", d.path().display());
    rt().block_on(behaves(&url));
    let url2 = format!("sqlite://{}/c2.db", d.path().display());
    rt().block_on(concurrent_writers(&url2));
}

#[test]
fn postgres_catalog() {
    let Some(pg) = Postgres::get() else { return };
    let url = pg.database("catalog_behaves");
    rt().block_on(behaves(&url));
    let url2 = pg.database("catalog_writers");
    rt().block_on(concurrent_writers(&url2));
}

#[test]
fn bad_urls_are_one_line_errors_without_passwords() {
    let e = block_on(Catalog::open("mysql://x"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a catalog URL"), "{e}");
    let e = block_on(Catalog::open("postgres://u:hunter2@127.0.0.1:1/db"))
        .unwrap_err()
        .to_string();
    assert!(
        !e.contains("hunter2") && e.contains("u:***@127.0.0.1:1"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    assert_eq!(
        redact_url("sqlite://./output/catalog.db"),
        "sqlite://./output/catalog.db"
    );
}
