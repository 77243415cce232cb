//! `dualmetrics shim` refusing to start: an invalid mapping file (it exits non-zero and names the
//! file, the rule, the key and the value on stderr), and no explicit legacy path.
use std::process::Command;

#[test]
fn shim_with_a_bad_mapping_file_exits_non_zero_naming_file_rule_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad-mapping.yml");
    std::fs::write(&file, "mappings:\n- match: a.*.*\n  name: x\n  labels:\n    host: $3\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dualmetrics"))
        .args(["shim", "--no-tee", "--udp", "127.0.0.1:0", "--mapping"])
        .arg(&file)
        .env_remove("DUALMETRICS_SHIM_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the shim started: {stderr}");
    for needle in ["bad-mapping.yml", "mappings[0].labels.host", "\"$3\"", "2 captures"] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

/// The shim usually takes the legacy daemon's port: started with no legacy path (neither `--tee`
/// nor `--no-tee`) it would cut that pipeline silently, so it refuses, naming both choices.
#[test]
fn shim_without_a_legacy_choice_refuses_to_start_naming_tee_and_no_tee() {
    let out = Command::new(env!("CARGO_BIN_EXE_dualmetrics"))
        .args(["shim", "--udp", "127.0.0.1:0"])
        .env_remove("DUALMETRICS_SHIM_CONFIG")
        .env_remove("DUALMETRICS_SHIM_TEE")
        .env_remove("DUALMETRICS_SHIM_NO_TEE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the shim started: {stderr}");
    for needle in ["--tee", "--no-tee", "[tee] none = true"] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
    let both = Command::new(env!("CARGO_BIN_EXE_dualmetrics"))
        .args(["shim", "--udp", "127.0.0.1:0", "--tee", "127.0.0.1:9", "--no-tee"])
        .output()
        .unwrap();
    assert!(!both.status.success(), "--tee with --no-tee was accepted");
}
