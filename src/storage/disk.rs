//! The data volume's free space. Uploads may not take the last `reserve` bytes of it, so
//! that when users fill the disk with files, chat (the database) still has room to write;
//! and the node reports itself not ready once it has less than half the reserve left.

use std::path::{Path, PathBuf};

/// The volume that holds the database and the blobs.
#[derive(Debug, Clone)]
pub struct DataVolume {
    dir: PathBuf,
    /// Bytes uploads must leave free.
    reserve: u64,
}

/// Why the volume cannot take more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    #[error("the node's disk has {free} bytes free and keeps {reserve} for chat; {wanted} more bytes of uploads do not fit")]
    Full {
        free: u64,
        reserve: u64,
        wanted: u64,
    },
    #[error("cannot read the free space of {dir}: {message}")]
    Unknown { dir: String, message: String },
}

impl DataVolume {
    pub fn new(dir: &Path, reserve: u64) -> Self {
        DataVolume {
            dir: dir.to_path_buf(),
            reserve,
        }
    }

    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    /// Bytes an unprivileged writer may still use.
    pub fn free_bytes(&self) -> Result<u64, DiskError> {
        free_bytes(&self.dir).map_err(|e| DiskError::Unknown {
            dir: self.dir.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Whether `bytes` more of upload data leave the reserve free.
    pub fn room_for_upload(&self, bytes: u64) -> Result<(), DiskError> {
        let free = self.free_bytes()?;
        if free.saturating_sub(bytes) < self.reserve {
            return Err(DiskError::Full {
                free,
                reserve: self.reserve,
                wanted: bytes,
            });
        }
        Ok(())
    }

    /// `Err` with the reason when the node should not take new work: less than half the
    /// reserve is left.
    pub fn ready(&self) -> Result<(), String> {
        let free = self.free_bytes().map_err(|e| e.to_string())?;
        if free < self.reserve / 2 {
            return Err(format!(
                "the data volume has only {free} bytes free (the node keeps {} for chat); free some space",
                self.reserve
            ));
        }
        Ok(())
    }
}

fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs writes only into the struct passed, from a NUL-terminated path.
    unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stats) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_leave_the_reserve_free() {
        let dir = std::env::temp_dir();
        let free = DataVolume::new(&dir, 0).free_bytes().unwrap_or(0);
        assert!(free > 0, "the temp dir has free space");
        let volume = DataVolume::new(&dir, free / 2);
        assert!(volume.room_for_upload(0).is_ok());
        assert!(matches!(
            volume.room_for_upload(free),
            Err(DiskError::Full { .. })
        ));
        assert!(DataVolume::new(&dir, free.saturating_mul(4))
            .ready()
            .is_err());
        assert!(DataVolume::new(Path::new("/no/such/dir"), 1)
            .free_bytes()
            .is_err());
    }
}
