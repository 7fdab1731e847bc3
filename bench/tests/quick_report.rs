//! Runs `courier-bench --quick` against real servers and checks what it
//! writes: a well-formed JSON report with every client's series, a valid SVG
//! naming each series, and Markdown tables. Not a timed assertion: the
//! figures themselves are not judged.

use std::collections::BTreeSet;
use std::process::Command;

const REFERENCE_CLIENTS: [&str; 6] = [
    "broker ceiling",
    "nats bench",
    "async-nats",
    "async-nats current-thread",
    "bench_writer",
    "bench_reader",
];

#[test]
fn quick_run_writes_complete_json_svg_and_markdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("report.json");
    let svg_path = dir.path().join("report.svg");
    let md_path = dir.path().join("report.md");
    let output = Command::new(env!("CARGO_BIN_EXE_courier-bench"))
        .arg("--quick")
        .arg("--json")
        .arg(&json_path)
        .arg("--plot")
        .arg(&svg_path)
        .arg("--markdown")
        .arg(&md_path)
        .output()
        .expect("run courier-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "courier-bench failed: {stderr}");

    // JSON: the report model, every field where it belongs.
    let text = std::fs::read_to_string(&json_path).expect("JSON report written");
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON report parses");
    assert_eq!(report["mode"], "quick");
    assert!(
        report["machine"]["cpus"].as_u64().unwrap_or(0) >= 1,
        "{}",
        report["machine"]
    );
    let results = report["results"].as_array().expect("results array");
    assert!(!results.is_empty(), "no results: {stderr}");
    for r in results {
        for key in ["protocol", "scenario", "client"] {
            assert!(r[key].is_string(), "{key} missing in {r}");
        }
        assert!(r["payload_bytes"].as_u64().is_some(), "{r}");
        assert!(r["msgs_per_s"].as_f64().is_some(), "{r}");
        assert!(r["error"].is_null() || r["error"].is_string(), "{r}");
        if r["error"].is_null() {
            assert!(
                r["messages"].as_u64().unwrap_or(0) > 0,
                "a successful run moved messages: {r}"
            );
            assert!(r["msgs_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
        }
        if let Some(latency) = r["latency_us"].as_object() {
            for key in ["p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"] {
                assert!(latency[key].as_f64().is_some(), "{key} missing in {r}");
            }
        }
    }
    let succeeded: BTreeSet<&str> = results
        .iter()
        .filter(|r| r["error"].is_null())
        .filter_map(|r| r["client"].as_str())
        .collect();
    let mut expected: Vec<&str> = REFERENCE_CLIENTS.to_vec();
    if cfg!(feature = "courier") {
        expected.push("courier");
        expected.push("courier-core blocking");
    }
    for client in &expected {
        assert!(
            succeeded.contains(client),
            "no successful {client} series in the report (clients with results: {succeeded:?}); stderr:\n{stderr}"
        );
    }
    // The server's own counters were checked for every successful NATS
    // throughput series and every NSQ publish series (a mismatch fails the run).
    for r in results.iter().filter(|r| r["error"].is_null()) {
        let counted = (r["protocol"] == "nats" && r["scenario"] != "request")
            || (r["protocol"] == "nsq"
                && r["scenario"].as_str().unwrap_or("").contains("pub")
                && r["client"] != "courier-core blocking");
        if counted {
            let note = r["server_counts"].as_str().unwrap_or("");
            assert!(
                note.starts_with("/varz in_msgs +") || note.starts_with("nsqd message_count"),
                "server count not checked: {r}"
            );
        }
    }
    assert_eq!(report["count_mismatches"], 0);
    // TLS (issue 10): every client over TLS beside plaintext on the same
    // server, /varz-checked like plaintext; the handshake has percentiles.
    if cfg!(feature = "courier") {
        for client in ["courier", "nats bench", "async-nats", "courier plaintext"] {
            let row = results
                .iter()
                .find(|r| {
                    r["protocol"] == "nats tls"
                        && r["scenario"] == "publish"
                        && r["client"] == client
                })
                .unwrap_or_else(|| panic!("no nats tls publish row for {client}"));
            assert!(row["error"].is_null(), "{row}");
            let note = row["server_counts"].as_str().unwrap_or("");
            assert!(
                note.starts_with("/varz in_msgs +"),
                "TLS count not checked: {row}"
            );
        }
        let handshake = results
            .iter()
            .find(|r| {
                r["protocol"] == "nats tls"
                    && r["scenario"] == "handshake"
                    && r["client"] == "courier"
            })
            .expect("a courier TLS handshake row");
        assert!(
            handshake["latency_us"]["p99_us"].as_f64().unwrap_or(0.0) > 0.0,
            "{handshake}"
        );
        // JetStream (issue 11): every successful row checked against
        // STREAM.INFO or CONSUMER.INFO, for courier and the references.
        let js: Vec<_> = results
            .iter()
            .filter(|r| r["protocol"] == "nats js")
            .collect();
        for scenario in [
            "publish window 1",
            "publish window 256",
            "fetch",
            "consume",
            "outbox",
        ] {
            assert!(
                js.iter().any(|r| r["scenario"] == scenario
                    && r["client"] == "courier"
                    && r["error"].is_null()),
                "no successful courier nats js {scenario} row"
            );
        }
        for r in &js {
            assert!(r["error"].is_null(), "{r}");
            let note = r["server_counts"].as_str().unwrap_or("");
            assert!(
                note.starts_with("STREAM.INFO: ") || note.starts_with("CONSUMER.INFO: ack floor"),
                "JetStream result not checked on the server: {r}"
            );
        }
    }
    // Ratios are per-round paired ratios; the load of the machine is recorded.
    let ratios = report["ratios"].as_array().expect("ratios array");
    assert!(
        ratios
            .iter()
            .any(|p| p["other"] == "nats bench" && p["rounds"] == 1),
        "{ratios:?}"
    );
    let load = report["load"].as_array().expect("load array");
    assert!(
        load[0].as_str().unwrap_or("").contains("loadavg"),
        "{load:?}"
    );
    // courier's runtime series say which transport ran.
    for r in results
        .iter()
        .filter(|r| r["client"] == "courier" && r["protocol"] == "nats" && r["error"].is_null())
    {
        let transport = r["transport"].as_str().unwrap_or("");
        assert!(transport == "io_uring" || transport == "epoll", "{r}");
    }
    // Request/reply carries latency percentiles for every client that ran it.
    for r in results
        .iter()
        .filter(|r| r["scenario"] == "request" && r["error"].is_null())
    {
        assert!(r["latency_us"].is_object(), "request without latency: {r}");
    }

    // SVG: valid XML, an <svg> root, and each series named in the legend.
    let svg = std::fs::read_to_string(&svg_path).expect("SVG written");
    let doc = roxmltree::Document::parse(&svg).expect("SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: String = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| format!("{}\n", t.trim()))
        .collect();
    for client in &expected {
        assert!(
            texts.lines().any(|l| l == *client),
            "SVG legend lacks the {client} series"
        );
    }

    // Markdown: the headline table with a column per client.
    let md = std::fs::read_to_string(&md_path).expect("Markdown written");
    assert!(md.contains("### Headline"), "{md}");
    for client in &expected {
        assert!(
            md.contains(&format!(" {client} |")),
            "Markdown lacks {client}"
        );
    }
}

/// The pinned pass: broker on CPU 0, the client under test on CPU 1; its
/// rows carry their own protocol label and the server counts still hold.
#[test]
fn quick_pinned_pass_labels_its_rows_and_checks_counts() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("skipped: pinning needs 2 CPUs");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("pinned.json");
    let output = Command::new(env!("CARGO_BIN_EXE_courier-bench"))
        .args(["--quick", "--pinning", "pinned", "--only", "nats publish"])
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("run courier-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "courier-bench failed: {stderr}");
    let text = std::fs::read_to_string(&json_path).expect("JSON report written");
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON report parses");
    let results = report["results"].as_array().expect("results array");
    let ok: Vec<&serde_json::Value> = results.iter().filter(|r| r["error"].is_null()).collect();
    assert!(ok.len() >= 4, "{results:?}");
    for r in &ok {
        assert_eq!(r["protocol"], "nats pinned", "{r}");
        assert!(
            r["server_counts"]
                .as_str()
                .unwrap_or("")
                .starts_with("/varz in_msgs +"),
            "{r}"
        );
    }
}
