//! The mapping table's invariants, the serde names, and the table in docs/METRICS.md.

use bench_server::engine::{self, Engine, Kind, Series};
use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::Error;

#[test]
fn one_row_per_engine_and_series_in_table_order() {
    let table = engine::table();
    let key = |s: &engine::SeriesSpec| {
        let e = Engine::KNOWN
            .iter()
            .position(|&e| e == s.engine)
            .expect("a known engine");
        let series = Series::ALL.iter().position(|&x| x == s.series).unwrap();
        (e, series)
    };
    for pair in table.windows(2) {
        assert!(
            key(&pair[0]) < key(&pair[1]),
            "{:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    for s in table {
        let found = engine::spec(s.engine, s.series).unwrap();
        assert_eq!(found.names, s.names);
    }
}

#[test]
fn names_carry_the_engine_prefix_and_fit_their_kind() {
    for s in engine::table() {
        assert!(!s.names.is_empty(), "{s:?}");
        for (i, name) in s.names.iter().enumerate() {
            assert!(
                name.starts_with(s.engine.prefix()) && name.len() > s.engine.prefix().len(),
                "{s:?}"
            );
            assert!(!s.names[..i].contains(name), "{s:?}: {name} twice");
            match s.kind {
                Kind::Histogram => {
                    for suffix in ["_bucket", "_sum", "_count", "_total"] {
                        assert!(!name.ends_with(suffix), "{s:?}: {name}");
                    }
                }
                // Counters as exposed: `_total`, except TGI's (no suffix, or a histogram's `_sum`).
                Kind::Counter if s.engine == Engine::Tgi => {
                    assert!(
                        name.ends_with("_sum") || *name == "tgi_request_success",
                        "{s:?}"
                    )
                }
                Kind::Counter => assert!(name.ends_with("_total"), "{s:?}"),
                Kind::Gauge => assert!(!name.ends_with("_total"), "{s:?}"),
            }
        }
        let kind = match s.series {
            Series::Running
            | Series::Waiting
            | Series::KvCacheUsage
            | Series::PrefixCacheHitRate => Kind::Gauge,
            _ if s.series.unit() == "s" => Kind::Histogram,
            _ => Kind::Counter,
        };
        assert_eq!(s.kind, kind, "{s:?}");
        assert!(s.scale.is_finite() && s.scale > 0.0, "{s:?}");
        assert!(
            !s.note.is_empty() && !s.note.contains('\n') && !s.note.contains('|'),
            "{s:?}"
        );
    }
}

#[test]
fn serde_names_are_the_as_str_names() {
    for e in Engine::KNOWN.into_iter().chain([Engine::Unknown]) {
        assert_eq!(
            Engine::deserialize(e.as_str().into_deserializer()),
            Ok::<_, Error>(e)
        );
    }
    for s in Series::ALL {
        assert_eq!(
            Series::deserialize(s.as_str().into_deserializer()),
            Ok::<_, Error>(s)
        );
    }
    assert_eq!(Engine::LlamaCpp.as_str(), "llamacpp");
}

#[test]
fn the_doc_holds_the_generated_table() {
    let doc = include_str!("../../../../docs/METRICS.md");
    let table = engine::markdown_table();
    assert!(
        doc.contains(&table),
        "docs/METRICS.md does not hold the table generated from engine::table(); put this in \
         its section \"The server's series: engine mapping\":\n\n{table}"
    );
}
