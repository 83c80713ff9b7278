//! `inboxd-bench` end to end, on the shipped rules in a scratch inbox.

use assert_cmd::Command;

#[test]
fn bench_runs_every_measurement_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    inboxd::tools::init::init(dir.path()).unwrap();
    let out = Command::cargo_bin("inboxd-bench")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("INBOXD_CONFIG")
        .env("RUST_LOG", "error")
        .args([
            "--events",
            "300",
            "--rate",
            "300",
            "--reloads",
            "1",
            "--repeat",
            "2",
            "--slow-event",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let figures: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(figures["events"], 300);
    for key in [
        "processed_per_s",
        "ceiling_per_s",
        "state_ceiling_per_s",
        "close_10k_ticket_ms",
        "peak_memory_mb",
    ] {
        assert!(figures[key].as_f64().unwrap() > 0.0, "{key}: {figures}");
    }
    let runs = figures["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.contains(&serde_json::json!({
        "enqueue_per_s": figures["enqueue_per_s"],
        "processed_per_s": figures["processed_per_s"],
        "ceiling_per_s": figures["ceiling_per_s"],
        "ratio_to_ceiling": figures["ratio_to_ceiling"],
        "state_ceiling_per_s": figures["state_ceiling_per_s"],
        "ratio_to_state_ceiling": figures["ratio_to_state_ceiling"],
    })));
    assert_eq!(figures["latency"]["samples"], 300);
    assert_eq!(figures["reload"]["samples"], 1);
    assert!(
        figures["enqueue_beside_slow_event"]["samples"]
            .as_u64()
            .unwrap()
            > 10
    );
    // It works in a scratch directory: the inbox's own store is untouched.
    assert!(!dir.path().join("var/inboxd.db").exists());
}
