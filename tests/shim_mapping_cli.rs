//! `dualmetrics shim --mapping FILE` with an invalid mapping file: the shim does not start, exits
//! non-zero and names the file, the rule, the key and the value on stderr.
use std::process::Command;

#[test]
fn shim_with_a_bad_mapping_file_exits_non_zero_naming_file_rule_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad-mapping.yml");
    std::fs::write(&file, "mappings:\n- match: a.*.*\n  name: x\n  labels:\n    host: $3\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dualmetrics"))
        .args(["shim", "--udp", "127.0.0.1:0", "--mapping"])
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
