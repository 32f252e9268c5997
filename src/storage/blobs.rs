//! Where the bytes of uploads live: one interface, [`Blobs`], and its implementation on a
//! local directory ([`DirBlobs`]), which is the default. In a cluster every node mounts the
//! same directory (`PEERLINK_BLOB_DIR`), so an upload begun on one node is continued on
//! another and a share link made anywhere downloads from anywhere.
//!
//! A blob is named by its upload's id, made by the node; no name a user chose ever reaches
//! the disk. Callers run these on the blocking pool.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The bytes of uploads, by upload id. Writers are one at a time per blob: the database's
/// claim on the upload (see `DbStore::claim_upload`) decides who.
pub trait Blobs: Send + Sync + std::fmt::Debug {
    /// An empty blob; fails if one of that id exists.
    fn create(&self, id: Uuid) -> std::io::Result<()>;
    /// Writes `data` at `offset` (the end of what is stored).
    fn write_at(&self, id: Uuid, offset: u64, data: &[u8]) -> std::io::Result<()>;
    /// Cuts the blob back to `len` bytes (a PATCH whose checksum failed).
    fn truncate(&self, id: Uuid, len: u64) -> std::io::Result<()>;
    /// Makes the bytes durable before the offset that covers them is recorded.
    fn sync(&self, id: Uuid) -> std::io::Result<()>;
    /// Opens the blob to read it (a download).
    fn open(&self, id: Uuid) -> std::io::Result<File>;
    /// Removes the blob; one that is already gone is not an error.
    fn remove(&self, id: Uuid);
}

/// Blobs as files in one directory.
#[derive(Debug, Clone)]
pub struct DirBlobs {
    dir: PathBuf,
}

impl DirBlobs {
    pub fn open(dir: &Path) -> std::io::Result<DirBlobs> {
        std::fs::create_dir_all(dir)?;
        Ok(DirBlobs {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.simple().to_string())
    }

    fn for_writing(&self, id: Uuid) -> std::io::Result<File> {
        std::fs::OpenOptions::new().write(true).open(self.path(id))
    }
}

impl Blobs for DirBlobs {
    fn create(&self, id: Uuid) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path(id))
            .map(drop)
    }

    fn write_at(&self, id: Uuid, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut file = self.for_writing(id)?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(data)
    }

    fn truncate(&self, id: Uuid, len: u64) -> std::io::Result<()> {
        self.for_writing(id)?.set_len(len)
    }

    fn sync(&self, id: Uuid) -> std::io::Result<()> {
        self.for_writing(id)?.sync_data()
    }

    fn open(&self, id: Uuid) -> std::io::Result<File> {
        File::open(self.path(id))
    }

    fn remove(&self, id: Uuid) {
        if let Err(e) = std::fs::remove_file(self.path(id)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("could not remove the bytes of upload {id}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_written_cut_back_read_and_removed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let blobs = DirBlobs::open(dir.path()).unwrap_or_else(|e| panic!("open: {e}"));
        let id = Uuid::new_v4();
        let read = |blobs: &DirBlobs| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut blobs.open(id).unwrap_or_else(|e| panic!("{e}")),
                &mut bytes,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            bytes
        };
        assert!(blobs.create(id).is_ok());
        assert!(blobs.create(id).is_err(), "a blob is created once");
        assert!(blobs.write_at(id, 0, b"hello").is_ok());
        assert!(blobs.write_at(id, 5, b" world").is_ok());
        assert!(blobs.sync(id).is_ok());
        assert_eq!(read(&blobs), b"hello world");
        assert!(blobs.truncate(id, 5).is_ok());
        assert_eq!(read(&blobs), b"hello");
        blobs.remove(id);
        blobs.remove(id);
        assert!(blobs.open(id).is_err());
    }
}
