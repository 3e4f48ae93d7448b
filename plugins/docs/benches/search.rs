//! Docs search latency over the repository's whole corpus (its `docs/` and every plugin's),
//! against a baseline measured in the same run: a case-insensitive substring scan of every
//! doc's text, the least a search could do. Prints the library's build time and, per query,
//! the median and p99 of both. `cargo bench -p docs`; `-- --quick` runs fewer rounds.

extern crate awesome_audit as _;
extern crate my_awesome_plugin as _;

use std::hint::black_box;
use std::time::{Duration, Instant};

const QUERIES: [&str; 5] = [
    "refused words",
    "health",
    "configuration reload",
    "backup restore postgres",
    "midd",
];

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let rounds = if quick { 200 } else { 5000 };
    let registry = plexichat::Registry::linked().expect("the linked plugins form a registry");
    let plugins = registry.plugins();

    let started = Instant::now();
    let search = docs::searcher(plugins, "docs");
    let build = started.elapsed();

    // The baseline's corpus: every doc's text, lowercased once.
    let texts: Vec<String> = plugins
        .iter()
        .flat_map(|plugin| plugin.docs)
        .map(|file| String::from_utf8_lossy(file.bytes).to_lowercase())
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    println!(
        "docs search: {} files, {} KiB; library built in {:.2} ms",
        texts.len(),
        bytes / 1024,
        build.as_secs_f64() * 1e3
    );
    println!("| query | search p50 | search p99 | substring scan p50 | ratio (p50) |");
    println!("|---|---|---|---|---|");
    for query in QUERIES {
        let words: Vec<String> = query.split(' ').map(str::to_lowercase).collect();
        let (mut ours, mut scan) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            // Alternating, so that drift hits both.
            let started = Instant::now();
            black_box(search(black_box(query), 20));
            ours.push(started.elapsed());
            let started = Instant::now();
            let found = texts
                .iter()
                .filter(|text| words.iter().any(|word| text.contains(word.as_str())))
                .count();
            black_box(found);
            scan.push(started.elapsed());
        }
        let (p50, p99) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.99));
        let scan_p50 = percentile(&mut scan, 0.5);
        println!(
            "| `{query}` | {:.1} µs | {:.1} µs | {:.1} µs | {:.2} |",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            scan_p50.as_secs_f64() * 1e6,
            p50.as_secs_f64() / scan_p50.as_secs_f64()
        );
    }
}
