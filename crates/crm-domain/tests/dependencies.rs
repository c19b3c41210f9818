//! Guards the core's first invariant: `crm-domain` depends on no web,
//! database or serialization crate, so it stays free of I/O and frameworks.

const FORBIDDEN: &[&str] = &[
    "actix",
    "axum",
    "hyper",
    "http",
    "reqwest",
    "warp",
    "rocket",
    "tower",
    "diesel",
    "sqlx",
    "postgres",
    "tokio-postgres",
    "rusqlite",
    "libsqlite3",
    "r2d2",
    "deadpool",
    "redis",
    "serde",
    "serde_json",
    "bincode",
    "prost",
    "utoipa",
    "tokio",
];

/// The dependency names of the `[dependencies]` table of the manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                names.push(name.trim().split('.').next().unwrap_or("").to_owned());
            }
        }
    }
    names
}

#[test]
fn domain_depends_on_no_web_database_or_serialization_crate() {
    let manifest = include_str!("../Cargo.toml");
    let deps = dependencies(manifest);
    assert!(
        deps.iter().any(|d| d == "thiserror"),
        "the parser found the table: {deps:?}"
    );
    for dep in &deps {
        for bad in FORBIDDEN {
            assert!(
                !(dep == bad
                    || dep.starts_with(&format!("{bad}-"))
                    || dep.starts_with(&format!("{bad}_"))),
                "crm-domain must not depend on {dep}"
            );
        }
    }
}
