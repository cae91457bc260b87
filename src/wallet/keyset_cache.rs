//! The keysets (unit and public keys) of mints seen by earlier token
//! checks, one small JSON file per keyset under
//! `<dir>/<sha256 of the mint URL>/<keyset id>.json`. A keyset's keys never
//! change: its id is derived from them, and checked again when a file is
//! read, so a check of a token whose keysets are known here needs only the
//! mint's `checkstate`. Best effort: a file that cannot be read or written
//! is skipped (the keys are then fetched from the mint).

use std::path::{Path, PathBuf};

use cdk::nuts::KeySet;

/// The cached keysets of one mint.
#[derive(Clone)]
pub(super) struct KeysetCache {
    dir: PathBuf,
}

impl KeysetCache {
    /// The cache of `mint` under `root`.
    pub(super) fn new(root: &Path, mint: &str) -> KeysetCache {
        let name = crate::logs::sha256_hex(mint.trim_end_matches('/').as_bytes());
        KeysetCache {
            dir: root.join(name),
        }
    }

    /// Every keyset of this mint the cache holds (a file that does not
    /// parse, or whose keys do not give its id, is skipped).
    pub(super) fn load(&self) -> Vec<KeySet> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|text| serde_json::from_str::<KeySet>(&text).ok())
            .filter(|set| set.verify_id().is_ok())
            .collect()
    }

    /// Remember `sets` (the keysets a checked token used, fetched from the
    /// mint), replacing any file of the same keyset.
    pub(super) fn store(&self, sets: &[KeySet]) {
        if let Err(e) = self.try_store(sets) {
            tracing::debug!("keyset cache {}: {e}", self.dir.display());
        }
    }

    fn try_store(&self, sets: &[KeySet]) -> crate::error::Result<()> {
        crate::files::create_private_dir(&self.dir)?;
        for set in sets.iter().filter(|s| s.verify_id().is_ok()) {
            let path = self.dir.join(format!("{}.json", set.id));
            let json =
                serde_json::to_string(set).map_err(|e| crate::Error::Runtime(e.to_string()))?;
            let tmp = self.dir.join(format!(".{}.{}", set.id, std::process::id()));
            std::fs::write(&tmp, json)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| crate::Error::io("cannot write", e))?;
        }
        Ok(())
    }
}
