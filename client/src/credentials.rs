//! The stored login: the server URL and the current refresh token, in `credentials.json` of the client's
//! configuration directory (`$QUERYGPT_CLIENT_CONFIG_DIR`, else e.g. `~/.config/querygpt`).
//!
//! The refresh token is a password-equivalent that the server spends on every use and replaces with a new one;
//! presenting a spent one again revokes the whole session. So the file is created private (0600, its directory
//! 0700), every new token replaces it atomically (a private temp file in the same directory, then a rename), and
//! concurrent commands take turns on a lock file so that two of them never spend the same token.

use crate::error::{ClientError, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Overrides the configuration directory (tests, several accounts).
pub const CONFIG_DIR_ENV: &str = "QUERYGPT_CLIENT_CONFIG_DIR";
const FILE_NAME: &str = "credentials.json";
const LOCK_NAME: &str = "credentials.lock";

/// What `credentials.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The server's API base, e.g. `http://127.0.0.1:8000/api/v1`.
    pub server: String,
    /// The e-mail address logged in with (shown only).
    #[serde(default)]
    pub email: String,
    /// The refresh token not yet spent.
    pub refresh_token: String,
}

/// The directory holding the credentials.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store of `$QUERYGPT_CLIENT_CONFIG_DIR`, else `querygpt` in the user's configuration directory.
    pub fn locate() -> Result<Store> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(Store::at(PathBuf::from(dir)));
        }
        let base = dirs::config_dir().ok_or_else(|| {
            ClientError::Local(format!("cannot tell where your configuration directory is: set {CONFIG_DIR_ENV}"))
        })?;
        Ok(Store::at(base.join("querygpt")))
    }

    /// The store in `dir`.
    pub fn at(dir: PathBuf) -> Store {
        Store { dir }
    }

    /// The path of the credentials file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The stored credentials, `None` when nobody is logged in.
    pub fn load(&self) -> Result<Option<Credentials>> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ClientError::local(format!("cannot read {}", path.display()), e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClientError::Local(format!("{} is damaged ({e}): run querygpt login again", path.display())))
    }

    /// Replaces the stored credentials atomically: readers see the old file or the new one, never a part.
    pub fn save(&self, credentials: &Credentials) -> Result<()> {
        self.ensure_dir()?;
        let path = self.path();
        let temp = self.dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        let failed = |e: std::io::Error| ClientError::local(format!("cannot write {}", path.display()), e);
        let body = serde_json::to_vec_pretty(credentials).map_err(|e| failed(std::io::Error::other(e)))?;
        let _ = fs::remove_file(&temp);
        let written = (|| {
            let mut file = private_options().write(true).create_new(true).open(&temp)?;
            file.write_all(&body)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&temp, &path)?;
            // The rename itself is durable once the directory is synced (best effort: not every system can).
            if let Ok(dir) = File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(failed)
    }

    /// Deletes the credentials; `false` when there were none.
    pub fn delete(&self) -> Result<bool> {
        let path = self.path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ClientError::local(format!("cannot delete {}", path.display()), e)),
        }
    }

    /// Waits for the exclusive right to spend the stored refresh token; released when the guard is dropped.
    pub fn lock(&self) -> Result<LockGuard> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK_NAME);
        let failed = |e: std::io::Error| ClientError::local(format!("cannot lock {}", path.display()), e);
        let file = private_options().write(true).create(true).truncate(false).open(&path).map_err(failed)?;
        file.lock().map_err(failed)?;
        Ok(LockGuard { _file: file })
    }

    fn ensure_dir(&self) -> Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&self.dir).map_err(|e| ClientError::local(format!("cannot create {}", self.dir.display()), e))
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Holds the credentials lock (`flock` on `credentials.lock`) until dropped.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Options that create a file readable and writable by its owner only (0600 from the first byte on).
fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(token: &str) -> Credentials {
        Credentials {
            server: "http://127.0.0.1:8000/api/v1".into(),
            email: "a@b.c".into(),
            refresh_token: token.into(),
        }
    }

    #[test]
    fn saved_credentials_are_private_and_replaced_whole() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::at(root.path().join("nested").join("querygpt"));
        assert_eq!(store.load().unwrap(), None);
        store.save(&sample("one")).unwrap();
        store.save(&sample("two")).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample("two")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&store.path()), 0o600);
            assert_eq!(mode(store.dir()), 0o700);
        }
        let leftovers: Vec<_> = fs::read_dir(store.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(FILE_NAME)], "no temp file is left behind");
        let _lock = store.lock().unwrap();
        assert!(store.delete().unwrap());
        assert!(!store.delete().unwrap());
    }

    #[test]
    fn a_damaged_file_says_to_log_in_again() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::at(root.path().to_path_buf());
        fs::write(store.path(), "{not json").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("querygpt login"), "{err}");
    }
}
