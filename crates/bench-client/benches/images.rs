//! Synthetic images (`dataset.images`): the bytes each preset sends and what making one costs
//! the client's prepare thread (pixels + encoding + base64), per size and format.
//!
//! `cargo bench -p bench-client --bench images`

use std::time::Instant;

use bench_client::synth_image;
use bench_types::image::{IMAGE_PRESETS, ImageFormat, SyntheticImage};

fn main() {
    // `cargo test --all-targets` runs this (a few seconds) as a check: `--quick` in test mode
    // makes one image per case.
    let reps = if std::env::args().any(|a| a == "--bench") {
        5
    } else {
        1
    };
    println!(
        "{:<8} {:>9} {:<5} {:>11} {:>13} {:>10}",
        "size", "pixels", "fmt", "image KB", "data URL KB", "ms/image"
    );
    for (name, w, h) in IMAGE_PRESETS {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let mut best = f64::INFINITY;
            let (mut bytes, mut url_len) = (0, 0);
            for seed in 0..reps {
                let spec = SyntheticImage {
                    width: w,
                    height: h,
                    format,
                    seed,
                };
                let t = Instant::now();
                let (url, n) = synth_image::data_url(&spec).expect("encodes");
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
                (bytes, url_len) = (n, url.len());
            }
            println!(
                "{name:<8} {:>9} {:<5} {:>11.1} {:>13.1} {:>10.1}",
                format!("{w}x{h}"),
                match format {
                    ImageFormat::Jpeg => "jpeg",
                    ImageFormat::Png => "png",
                },
                bytes as f64 / 1024.0,
                url_len as f64 / 1024.0,
                best
            );
        }
    }
}
