//! Records a hash of the migrations, so that test templates built from an
//! older schema are never reused.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

fn hash_dir(dir: &Path, hasher: &mut DefaultHasher) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        path.file_name().hash(hasher);
        if path.is_dir() {
            hash_dir(&path, hasher);
        } else if let Ok(bytes) = std::fs::read(&path) {
            bytes.hash(hasher);
        }
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut hasher = DefaultHasher::new();
    hash_dir(&dir, &mut hasher);
    println!(
        "cargo:rustc-env=CRM_PG_MIGRATIONS_HASH={:016x}",
        hasher.finish()
    );
}
