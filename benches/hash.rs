//! SHA-256 throughput of the transfer hashing paths, next to OpenSSL's in the same run.
//!
//! Measures, on 64 KiB chunks (the size a transfer hands to the hasher):
//! - one stream through `Sha256State::update` (`sha2`, SHA-NI where the CPU has it);
//! - 16 streams through `update_many` on every kernel this CPU can run;
//! - 4 streams on the SHA-NI kernel and 8 on the AVX2 kernel (their own widths).
//!
//! Before criterion runs, `openssl speed -evp sha256 -bytes 65536 -seconds 3` gives the
//! one-core reference; after it, a table gives each median in GB/s and as a multiple of
//! OpenSSL's. Run with `cargo bench --bench hash` (release build; a few minutes).

use criterion::{Criterion, Throughput};
use peerlink_actors::hash::{update_many, Job, Kernel, Sha256State};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes per stream per call: one transfer chunk.
const CHUNK: usize = 64 * 1024;
/// Criterion group holding every case, so their results sit side by side on disk.
const GROUP: &str = "sha256_64KiB";

/// One measured configuration.
struct Case {
    /// Criterion's id within [`GROUP`].
    id: String,
    /// What the summary calls it.
    label: String,
    /// Bytes hashed per iteration.
    bytes: u64,
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) criterion runs
    // each case once as a smoke test and a 3-second reference would be wasted.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let openssl = if measuring { openssl_speed() } else { None };
    match openssl {
        Some(rate) => println!(
            "openssl speed -evp sha256 -bytes 65536 -seconds 3: {:.3} GB/s (one core)\n",
            rate / 1e9
        ),
        None if measuring => println!("openssl not found or unreadable: no reference\n"),
        None => {}
    }

    let output = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&output)
        .configure_from_args();
    let cases = run_cases(&mut criterion);
    criterion.final_summary();

    if measuring {
        print_summary(&output, &cases, openssl);
    }
}

/// Registers and runs every case; returns them for the summary.
fn run_cases(criterion: &mut Criterion) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut group = criterion.benchmark_group(GROUP);

    let chunk = test_data(CHUNK, 0);
    let mut state = Sha256State::new();
    let case = Case {
        id: "sha2_1_stream".into(),
        label: "1 stream, Sha256State::update (sha2)".into(),
        bytes: CHUNK as u64,
    };
    group.throughput(Throughput::Bytes(case.bytes));
    group.bench_function(&case.id, |b| b.iter(|| state.update(black_box(&chunk))));
    cases.push(case);

    let mut widths: Vec<(Kernel, usize)> = Kernel::available()
        .into_iter()
        .map(|kernel| (kernel, 16))
        .collect();
    // Each kernel also at its own width, where it has no idle lanes.
    for kernel in [Kernel::ShaNi, Kernel::Avx2] {
        if kernel.is_available() {
            widths.push((kernel, kernel.lanes()));
        }
    }
    for (kernel, streams) in widths {
        let data: Vec<Vec<u8>> = (0..streams).map(|i| test_data(CHUNK, i + 1)).collect();
        let mut states = vec![Sha256State::new(); streams];
        let case = Case {
            id: format!("{kernel}_{streams}_streams"),
            label: format!("{streams} streams, update_many {kernel}"),
            bytes: (streams * CHUNK) as u64,
        };
        group.throughput(Throughput::Bytes(case.bytes));
        group.bench_function(&case.id, |b| {
            b.iter(|| {
                let mut jobs: Vec<Job<'_>> = states
                    .iter_mut()
                    .zip(&data)
                    .map(|(state, data)| Job {
                        state,
                        data: black_box(data),
                    })
                    .collect();
                update_many(kernel, &mut jobs);
            })
        });
        cases.push(case);
    }
    group.finish();
    cases
}

/// Distinct, non-trivial bytes for each stream.
fn test_data(len: usize, seed: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed as u64;
    (0..len)
        .map(|_| {
            // xorshift64: cheap bytes that no compressor or branch predictor simplifies.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// OpenSSL's SHA-256 rate on 64 KiB buffers in bytes per second, from its
/// machine-readable output (`+F:<n>:sha256:<bytes per second>`).
fn openssl_speed() -> Option<f64> {
    let output = Command::new("openssl")
        .args([
            "speed", "-mr", "-evp", "sha256", "-bytes", "65536", "-seconds", "3",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .filter(|line| line.starts_with("+F:"))
        .find_map(|line| line.rsplit(':').next()?.trim().parse().ok())
}

/// Where criterion writes its results: the same place it would pick by default, made
/// explicit so that the summary can read them back.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// Median time per iteration in nanoseconds, from criterion's estimates of this run.
fn median_ns(output: &Path, id: &str) -> Option<f64> {
    let path = output.join(GROUP).join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn print_summary(output: &Path, cases: &[Case], openssl: Option<f64>) {
    println!("\nSHA-256, 64 KiB chunks: criterion medians against OpenSSL (one core)");
    println!("{:<44} {:>9} {:>12}", "case", "GB/s", "× OpenSSL");
    if let Some(rate) = openssl {
        let label = "openssl speed -evp sha256 (reference)";
        println!("{label:<44} {:>9.3} {:>12.2}", rate / 1e9, 1.0);
    }
    for case in cases {
        let Some(ns) = median_ns(output, &case.id) else {
            println!("{:<44} {:>9} {:>12}", case.label, "n/a", "");
            continue;
        };
        // Bytes per nanosecond is GB/s.
        let rate = case.bytes as f64 / ns;
        let ratio = openssl.map_or("n/a".to_string(), |r| format!("{:.2}", rate * 1e9 / r));
        println!("{:<44} {rate:>9.3} {ratio:>12}", case.label);
    }
}
