//! overlay2: kernel overlayfs with Docker's on-disk layout. (Being written.)
use super::*;

pub struct Overlay2 {
    home: PathBuf,
}

impl Overlay2 {
    pub fn open(home: &Path, _options: &[String]) -> Result<Overlay2> {
        Err(Error::Unsupported(format!(
            "overlay2 at {} is not implemented yet",
            home.display()
        )))
    }
}

impl Driver for Overlay2 {
    fn name(&self) -> &'static str {
        "overlay2"
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
        self.home.join(id).join("diff")
    }
    fn diff_format(&self) -> DiffFormat {
        DiffFormat::Overlay
    }
    fn diff_view(&self, _id: &str, _parent: Option<&str>) -> Result<DiffView> {
        todo!()
    }
    fn usage(&self, _id: &str) -> Result<Usage> {
        todo!()
    }
}
