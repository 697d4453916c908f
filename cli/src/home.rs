//! The CLI's state directory: the node's key pair and its associates.

use std::path::{Path, PathBuf};

use octolink::{Identity, TrustStore};

use crate::error::{fail, Result};

pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    /// `--home`, else `$OCTOLINK_HOME`, else `$XDG_CONFIG_HOME/octolink`,
    /// else `~/.config/octolink`.
    pub fn resolve(flag: Option<PathBuf>) -> Self {
        let dir = flag
            .or_else(|| std::env::var_os("OCTOLINK_HOME").map(PathBuf::from))
            .or_else(|| std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("octolink")))
            .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".config/octolink")))
            .unwrap_or_else(|| PathBuf::from(".octolink"));
        Self { dir }
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("node.key")
    }

    pub fn public_key_path(&self) -> PathBuf {
        self.dir.join("node.pub")
    }

    pub fn associates_path(&self) -> PathBuf {
        self.dir.join("associates.json")
    }

    pub fn inbox(&self) -> PathBuf {
        self.dir.join("inbox")
    }

    pub fn identity(&self) -> Result<Identity> {
        let path = self.key_path();
        if !path.exists() {
            fail!(
                "no key at {}: run `octolink keygen --home {}` first",
                path.display(),
                self.dir.display()
            );
        }
        Identity::load(&path).map_err(|e| crate::error::CliError(format!("unreadable key: {e}")))
    }

    pub fn trust(&self) -> Result<TrustStore> {
        Ok(TrustStore::load(&self.associates_path())?)
    }

    pub fn ensure_dir(&self) -> Result<()> {
        create_private_dir(&self.dir)
    }
}

/// Creates a directory readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::error::CliError(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}
