//! The build cache: which image a build step made from which parent image and step key
//! (the instruction after substitution, plus a digest of the sources for COPY and ADD).
//! A row only points at an image; the image (and so its layers) is the cached result, and a
//! row whose image was removed is a miss, deleted at the next prune. Kept in the metadata
//! database, so the cache survives restarts and every strata process shares it.

use rusqlite::{params, OptionalExtension};
use strata_image::Image;
use strata_meta::Component;

use super::Images;
use crate::error::Result;

/// The builder's table.
pub const BUILD_CACHE: Component = Component {
    name: "build_cache",
    migrations: &[BUILD_CACHE_V1],
};

const BUILD_CACHE_V1: &str = "
CREATE TABLE IF NOT EXISTS build_cache (
    parent   TEXT NOT NULL,   -- image ID of the step's parent, or 'scratch'
    key      TEXT NOT NULL,   -- sha256 of the step's key
    image_id TEXT NOT NULL,   -- the image the step made
    created  INTEGER NOT NULL,
    PRIMARY KEY (parent, key)
);
CREATE INDEX IF NOT EXISTS build_cache_by_image ON build_cache(image_id);
";

/// What `builder prune` removed.
#[derive(Clone, Debug, Default)]
pub struct CachePrune {
    /// Cache records dropped.
    pub records: usize,
    /// Intermediate images removed with them (untagged images only the cache named).
    pub images: Vec<String>,
    pub reclaimed: u64,
}

impl Images<'_> {
    fn cache_schema(&self) -> Result<()> {
        Ok(self.stores.db.migrate(&BUILD_CACHE)?)
    }

    /// The image a step with `key` on `parent` made before, if it is still there.
    pub fn cache_lookup(&self, parent: &str, key: &str) -> Result<Option<Image>> {
        self.cache_schema()?;
        let id: Option<String> = self.stores.db.read(|c| {
            c.query_row(
                "SELECT image_id FROM build_cache WHERE parent = ?1 AND key = ?2",
                params![parent, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(strata_meta::Error::from)
        })?;
        Ok(id.and_then(|id| self.stores.images.image(&id).ok()))
    }

    /// Records that a step with `key` on `parent` made `image`.
    pub fn cache_record(&self, parent: &str, key: &str, image: &str) -> Result<()> {
        self.cache_schema()?;
        let now = chrono::Utc::now().timestamp();
        self.stores.db.write(|tx| {
            tx.sql().execute(
                "INSERT OR REPLACE INTO build_cache (parent, key, image_id, created) VALUES (?1, ?2, ?3, ?4)",
                params![parent, key, image, now],
            ).map_err(strata_meta::Error::from)?;
            Ok::<_, crate::Error>(())
        })
    }

    /// `(records, bytes)` of the build cache, for `system df`: the intermediate images only
    /// the cache names (untagged) and their sizes.
    pub fn cache_usage(&self) -> Result<(usize, u64)> {
        let (records, ids) = self.cache_images()?;
        let mut size = 0;
        for id in ids {
            if let Ok(image) = self.stores.images.image(&id) {
                if image.tags.is_empty() {
                    size += image.size;
                }
            }
        }
        Ok((records, size))
    }

    fn cache_images(&self) -> Result<(usize, Vec<String>)> {
        self.cache_schema()?;
        Ok(self.stores.db.read(|c| {
            let records: i64 = c.query_row("SELECT count(*) FROM build_cache", [], |r| r.get(0))?;
            let mut stmt = c.prepare("SELECT DISTINCT image_id FROM build_cache")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, strata_meta::Error>((records as usize, ids))
        })?)
    }

    /// `builder prune`: every cache record, and the untagged images that only the cache
    /// kept (newest first, so a child goes before its parent), unless a container uses them.
    pub fn cache_prune(&self) -> Result<CachePrune> {
        let (records, ids) = self.cache_images()?;
        self.stores.db.write(|tx| {
            tx.sql()
                .execute("DELETE FROM build_cache", [])
                .map_err(strata_meta::Error::from)?;
            Ok::<_, crate::Error>(())
        })?;
        let mut images: Vec<Image> = ids
            .iter()
            .filter_map(|id| self.stores.images.image(id).ok())
            .filter(|i| i.tags.is_empty())
            .collect();
        images.sort_by_key(|i| std::cmp::Reverse(i.created));
        let mut report = CachePrune {
            records,
            ..Default::default()
        };
        for image in images {
            // An image a container or a tagged image still needs stays: only its record goes.
            if self.remove(&image.id, false).is_ok() {
                report.reclaimed += image.size;
                report.images.push(image.id);
            }
        }
        Ok(report)
    }
}
