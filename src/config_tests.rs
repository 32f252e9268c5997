use super::*;
use clap::Parser;

#[derive(Parser)]
struct Harness {
    #[command(flatten)]
    args: ServeArgs,
}

fn check(flags: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["peerlink"];
    argv.extend_from_slice(flags);
    Harness::try_parse_from(argv)
        .expect("flags parse")
        .args
        .check()
}

fn setting_of(flags: &[&str]) -> &'static str {
    check(flags).expect_err("should be refused").setting
}

#[test]
fn defaults_run_a_single_sqlite_node_on_loopback() {
    let config = check(&[]).unwrap();
    assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(
        config.database,
        DatabaseUrl::Sqlite("./peerlink-data/peerlink.db".into())
    );
    assert!(config.allowed_origins.is_empty());
    assert_eq!(config.limits.max_text_chars, 4000);
    assert_eq!(config.limits.max_text_frame, 65536);
}

#[test]
fn bad_settings_are_named() {
    // (flag, bad value, the variable the error must name)
    let cases = [
        ("--bind", "localhost", "PEERLINK_BIND"),
        ("--database-url", "mysql://x/y", "PEERLINK_DATABASE_URL"),
        (
            "--redis-url",
            "redis://127.0.0.1:6379",
            "PEERLINK_REDIS_URL", // with SQLite: a cluster needs PostgreSQL
        ),
        ("--redis-url", "http://x", "PEERLINK_REDIS_URL"),
        ("--admin-token", "short", "PEERLINK_ADMIN_TOKEN"),
        (
            "--allowed-origins",
            "http://ok.example,ftp://bad",
            "PEERLINK_ALLOWED_ORIGINS",
        ),
        ("--rate-per-sec", "0", "PEERLINK_RATE_PER_SEC"),
        ("--rate-burst", "lots", "PEERLINK_RATE_BURST"),
        ("--sqlite-sync", "sometimes", "PEERLINK_SQLITE_SYNC"),
        ("--node-id", "has space", "PEERLINK_NODE_ID"),
        ("--signups-per-minute", "0", "PEERLINK_SIGNUPS_PER_MINUTE"),
        (
            "--passivate-after-secs",
            "0",
            "PEERLINK_PASSIVATE_AFTER_SECS",
        ),
        (
            "--upload-quota-bytes",
            "ten gigs",
            "PEERLINK_UPLOAD_QUOTA_BYTES",
        ),
        (
            "--connections-per-address",
            "0",
            "PEERLINK_CONNECTIONS_PER_ADDRESS",
        ),
        (
            "--trusted-proxies",
            "127.0.0.1,proxy.local",
            "PEERLINK_TRUSTED_PROXIES",
        ),
        (
            "--creations-per-minute",
            "0",
            "PEERLINK_CREATIONS_PER_MINUTE",
        ),
    ];
    for (flag, value, variable) in cases {
        assert_eq!(setting_of(&[flag, value]), variable, "{flag} {value}");
    }
}

#[test]
fn inconsistent_limits_are_refused() {
    assert_eq!(
        setting_of(&["--max-text-chars", "100000", "--max-frame-bytes", "65536"]),
        "PEERLINK_MAX_TEXT_CHARS"
    );
}

#[test]
fn the_message_names_variable_and_flag() {
    let error = check(&["--bind", "nowhere"]).unwrap_err().to_string();
    assert!(
        error.contains("PEERLINK_BIND") && error.contains("--bind"),
        "{error}"
    );
}

#[test]
fn origins_are_normalised() {
    let config = check(&[
        "--allowed-origins",
        "https://Chat.Example.com, http://127.0.0.1:9000",
    ])
    .unwrap();
    assert_eq!(
        config.allowed_origins,
        vec!["https://chat.example.com", "http://127.0.0.1:9000"]
    );
}
