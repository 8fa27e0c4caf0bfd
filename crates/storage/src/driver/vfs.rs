//! vfs: each layer a full copy of its parent. (Being written.)
use super::*;

pub struct Vfs {
    home: PathBuf,
}

impl Vfs {
    pub fn open(home: &Path, _options: &[String]) -> Result<Vfs> {
        Err(Error::Unsupported(format!(
            "vfs at {} is not implemented yet",
            home.display()
        )))
    }
}

impl Driver for Vfs {
    fn name(&self) -> &'static str {
        "vfs"
    }
    fn home(&self) -> &Path {
        &self.home
    }
    fn status(&self) -> Vec<(String, String)> {
        todo!()
    }
    fn create(&self, _id: &str, _parent: Option<&str>, _writable: bool) -> Result<()> {
        todo!()
    }
    fn remove(&self, _id: &str) -> Result<()> {
        todo!()
    }
    fn list(&self) -> Result<Vec<String>> {
        todo!()
    }
    fn cleanup(&self) -> Result<()> {
        todo!()
    }
    fn mounts(&self, _id: &str) -> Result<Vec<Mount>> {
        todo!()
    }
    fn mount(&self, _id: &str) -> Result<PathBuf> {
        todo!()
    }
    fn unmount(&self, _id: &str) -> Result<()> {
        todo!()
    }
    fn is_mounted(&self, _id: &str) -> Result<bool> {
        todo!()
    }
    fn diff_dir(&self, id: &str) -> PathBuf {
        self.home.join("dir").join(id)
    }
    fn diff_format(&self) -> DiffFormat {
        DiffFormat::Naive
    }
    fn diff_view(&self, _id: &str, _parent: Option<&str>) -> Result<DiffView> {
        todo!()
    }
    fn usage(&self, _id: &str) -> Result<Usage> {
        todo!()
    }
}
