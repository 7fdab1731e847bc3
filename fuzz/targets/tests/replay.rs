//! Replays every corpus and regression file through its fuzz target on the
//! stable toolchain: `fuzz/corpus/<target>/*` (inputs the fuzzer kept for
//! coverage, seeded from real server captures) and
//! `fuzz/regressions/<target>/*` (every crash found, kept forever).

use std::path::Path;

use courier_fuzz_targets::TARGETS;

fn replay(folder: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(folder);
    let mut count = 0;
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for path in files {
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(
                result.is_ok(),
                "{name}: {} fails its invariants",
                path.display()
            );
            count += 1;
        }
    }
    count
}

#[test]
fn every_corpus_and_regression_file_passes_its_target() {
    let n = replay("corpus") + replay("regressions");
    eprintln!("replayed {n} corpus and regression inputs");
    // The seeds alone are more than this; an empty run means a wrong path.
    assert!(n >= 20, "only {n} corpus files found");
}

#[test]
fn every_target_has_a_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (name, _) in TARGETS {
        let n = std::fs::read_dir(root.join(name))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(n > 0, "fuzz/corpus/{name} is empty");
    }
}
