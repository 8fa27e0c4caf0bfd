//! The image store: config blobs under `blobs/sha256/`, and the `images` and `tags` tables in
//! the shared metadata database, changed in the same transactions as layer reference counts.
//!
//! Order of a new image: config blob written and made durable first, then one transaction
//! (image row, a reference on its top layer, tags). A crash before the commit leaves at most
//! an unreferenced blob, never an image without its config. Blobs are written and removed
//! under the store lock: they are content-addressed, so an `rmi` in one process and a
//! create of the same config in another must not interleave.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use strata_meta::{Component, Db, Tx};
use strata_storage::layer_store::LayerStore;
use strata_storage::{error::IoContext, Digest};

use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::reference::Reference;

/// The image store's tables.
pub const IMAGES: Component = Component {
    name: "images",
    migrations: &[IMAGES_V1],
};

const IMAGES_V1: &str = "
CREATE TABLE IF NOT EXISTS images (
    id        TEXT PRIMARY KEY,   -- sha256:<hex> of the config bytes
    top_layer TEXT,               -- chainID of the top layer, NULL for an image without layers
    created   INTEGER NOT NULL,   -- unix seconds
    size      INTEGER NOT NULL    -- bytes of all its layers' tars
);
CREATE TABLE IF NOT EXISTS tags (
    reference TEXT PRIMARY KEY,   -- name:tag
    image_id  TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS tags_by_image ON tags(image_id);
";

/// An image as the store lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>` of its config.
    pub id: String,
    pub top_layer: Option<Digest>,
    /// Unix seconds.
    pub created: i64,
    pub size: u64,
    pub tags: Vec<Reference>,
}

impl Image {
    /// The first 12 hex digits of the ID, as Docker shows it.
    pub fn short_id(&self) -> &str {
        short(&self.id)
    }
}

/// What `rmi` did, line by line, as Docker prints it (`Untagged: ...`, `Deleted: ...`).
pub type Removal = Vec<String>;

pub struct ImageStore {
    /// Images take references on their top layers in their own transactions.
    layers: Arc<LayerStore>,
    db: Arc<Db>,
    blobs: PathBuf,
}

impl ImageStore {
    /// Opens the image store on `layers`' database, creating its tables and blob directory
    /// on first use (the check is a read: opening an existing store takes no lock).
    pub fn open(layers: &Arc<LayerStore>) -> Result<ImageStore> {
        let db = layers.db().clone();
        let blobs = layers.root().join("blobs").join("sha256");
        let version = db.read(|conn| strata_meta::schema::version(conn, IMAGES.name))?;
        if version != Some(IMAGES.version()) {
            std::fs::create_dir_all(&blobs).ctx_path("creating blob directory", &blobs)?;
            db.migrate(&IMAGES)?;
        }
        Ok(ImageStore {
            layers: layers.clone(),
            db,
            blobs,
        })
    }

    /// Stores `config` as an image whose top layer is `top_layer`, and points `tags` at it
    /// (taking them from any image that had them, as Docker does).
    pub fn create_image(
        &self,
        config: &ImageConfig,
        top_layer: Option<&Digest>,
        tags: &[Reference],
    ) -> Result<Image> {
        check_top_layer(config, top_layer)?;
        let id = config.digest.to_string();
        let created = chrono::Utc::now().timestamp();
        self.db.write(|tx| {
            self.write_blob(&config.digest, &config.bytes)?;
            let exists = image_row(tx.sql(), &id)?.is_some();
            if !exists {
                let size = match top_layer {
                    Some(top) => self.chain_size(tx, top)?,
                    None => 0,
                };
                tx.sql().execute(
                    "INSERT INTO images (id, top_layer, created, size) VALUES (?1, ?2, ?3, ?4)",
                    params![id, top_layer.map(|d| d.to_string()), created, size as i64],
                )?;
                if let Some(top) = top_layer {
                    self.layers.retain_in(tx, top)?;
                }
            }
            for tag in tags {
                set_tag(tx, tag, &id)?;
            }
            Ok::<_, Error>(())
        })?;
        self.image(&id)
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<Image>> {
        self.db.read(|conn| {
            let mut stmt = conn.prepare("SELECT id FROM images ORDER BY created DESC, id")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.iter().map(|id| load_image(conn, id)).collect()
        })
    }

    /// The image with full ID `id`.
    pub fn image(&self, id: &str) -> Result<Image> {
        self.db.read(|conn| load_image(conn, id))
    }

    /// Finds an image by `name[:tag]`, full ID, or unique ID prefix, as Docker does.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        let id = self.db.read(|conn| resolve_id(conn, name_or_id))?;
        self.image(&id)
    }

    /// The exact config bytes of image `id`, checked against the digest.
    pub fn config(&self, id: &str) -> Result<ImageConfig> {
        let digest: Digest = id.parse()?;
        let path = self.blobs.join(digest.hex());
        let remedy = "remove the image (strata rmi -f) and import it again";
        let bytes = std::fs::read(&path).ctx(|| {
            format!(
                "reading the config of image {id} at {}; {remedy}",
                path.display()
            )
        })?;
        if Digest::of_bytes(&bytes) != digest {
            return Err(Error::BadConfig {
                digest: digest.to_string(),
                why: format!("{} does not match its digest; {remedy}", path.display()),
            });
        }
        ImageConfig::from_bytes(bytes)
    }

    /// Points `reference` at the image `name_or_id`.
    pub fn tag(&self, name_or_id: &str, reference: &Reference) -> Result<()> {
        self.db.write(|tx| {
            // Resolved under the lock: an image removed meanwhile is "no such image", not a
            // foreign-key failure.
            let id = resolve_id(tx.sql(), name_or_id)?;
            set_tag(tx, reference, &id)
        })
    }

    /// `rmi`: a tag of an image with other tags is only untagged; otherwise the image goes,
    /// and its top layer is released. Refused while writable layers use it, unless `force`.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Removal> {
        self.db.write(|tx| {
            let id = resolve_id(tx.sql(), name_or_id)?;
            let image = load_image(tx.sql(), &id)?;
            let by_tag = name_or_id.parse::<Reference>().ok().filter(|r| image.tags.contains(r));
            let mut lines = Vec::new();
            if let (Some(tag), true) = (&by_tag, image.tags.len() > 1) {
                untag(tx, tag)?;
                lines.push(format!("Untagged: {tag}"));
                return Ok::<_, Error>(lines);
            }
            if by_tag.is_none() && image.tags.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "unable to delete {} (must be forced): the image is tagged {} times; remove the tags by name or use -f",
                    image.short_id(),
                    image.tags.len()
                )));
            }
            let users = self.layers.rw_layers_of_image_in(tx, &id)?;
            if !users.is_empty() && !force {
                return Err(Error::Conflict(format!(
                    "unable to remove image {name_or_id} ({}): writable layers use it ({}); remove them first (strata rm) or use -f",
                    image.short_id(),
                    users.join(", ")
                )));
            }
            lines.extend(image.tags.iter().map(|tag| format!("Untagged: {tag}")));
            // By image, not by parsed tag: a row whose spelling no longer parses (or
            // normalises differently) must not be left pointing at a deleted image.
            tx.sql()
                .execute("DELETE FROM tags WHERE image_id = ?1", [&id])?;
            tx.sql().execute("DELETE FROM images WHERE id = ?1", [&id])?;
            if let Some(top) = &image.top_layer {
                self.layers.release_in(tx, top)?;
            }
            let blob = self.blob_path(&id)?;
            tx.on_commit(move || remove_blob(&blob));
            lines.push(format!("Deleted: {id}"));
            Ok(lines)
        })
    }

    /// Sum of the tar sizes of `top` and every layer below it.
    fn chain_size(&self, tx: &Tx<'_>, top: &Digest) -> Result<u64> {
        let mut size = 0;
        let mut next = Some(top.clone());
        while let Some(chain) = next {
            let layer = self.layers.layer_in(tx, &chain)?;
            size += layer.size;
            next = layer.parent;
        }
        Ok(size)
    }

    fn blob_path(&self, id: &str) -> Result<PathBuf> {
        Ok(self.blobs.join(id.parse::<Digest>()?.hex()))
    }

    /// Writes the blob unless present. Called under the store lock, where no `rmi` can be
    /// removing it between the check and the row that will use it.
    fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let dest = self.blobs.join(digest.hex());
        if dest.exists() {
            return Ok(());
        }
        let mut staged = self.layers.staging_file(".blob")?;
        std::io::Write::write_all(staged.file(), bytes).ctx_path("writing blob", staged.path())?;
        staged.persist(&dest)?;
        Ok(())
    }
}

/// Consistency of the image tables and blobs, for `strata check` and recovery.
impl ImageStore {
    /// References images hold on layers: one on each image's top layer, read on `conn` (so
    /// the caller can count them in the transaction that counts the layers' other users).
    pub fn layer_holds(conn: &Connection) -> Result<HashMap<Digest, u64>> {
        let mut stmt = conn.prepare(
            "SELECT top_layer, count(*) FROM images WHERE top_layer IS NOT NULL GROUP BY top_layer",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(top, n)| Ok((top.parse()?, n as u64)))
            .collect()
    }

    /// Checks that image `id`'s config is readable, matches its digest, and describes the
    /// chain its top layer ends.
    pub fn check_image(&self, image: &Image) -> Result<()> {
        check_top_layer(&self.config(&image.id)?, image.top_layer.as_ref())
    }

    /// Config blobs no image row names (a create or `rmi` interrupted between its blob and
    /// its transaction). Read without the lock: exact only while no image is being made.
    pub fn orphan_blobs(&self) -> Result<Vec<PathBuf>> {
        self.db.read(|conn| self.orphans_in(conn))
    }

    /// Removes [`ImageStore::orphan_blobs`], under the store lock (blobs are only written
    /// under it, in the transaction that inserts their row). Returns how many went.
    pub fn remove_orphan_blobs(&self) -> Result<usize> {
        self.db.write(|tx| {
            let orphans = self.orphans_in(tx.sql())?;
            for path in &orphans {
                std::fs::remove_file(path).ctx_path("removing orphan blob", path)?;
            }
            Ok(orphans.len())
        })
    }

    fn orphans_in(&self, conn: &Connection) -> Result<Vec<PathBuf>> {
        let mut stmt = conn.prepare("SELECT id FROM images")?;
        let ids: HashSet<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut orphans = Vec::new();
        for entry in std::fs::read_dir(&self.blobs).ctx_path("listing", &self.blobs)? {
            let entry = entry.ctx_path("listing", &self.blobs)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !ids.contains(&format!("sha256:{name}")) {
                orphans.push(entry.path());
            }
        }
        orphans.sort();
        Ok(orphans)
    }

    /// Tags that name no image (only a damaged database has them: the schema forbids it).
    pub fn dangling_tags(&self) -> Result<Vec<String>> {
        self.db.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT reference FROM tags WHERE image_id NOT IN (SELECT id FROM images) ORDER BY reference",
            )?;
            let tags = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(tags)
        })
    }

    pub fn remove_dangling_tags(&self) -> Result<usize> {
        self.db.write(|tx| {
            Ok(tx.sql().execute(
                "DELETE FROM tags WHERE image_id NOT IN (SELECT id FROM images)",
                [],
            )?)
        })
    }
}

/// Removes an image's config blob once its row is gone. Another image cannot share it (the
/// blob is this image's own config); a failure leaves only an unreferenced file.
fn remove_blob(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("removing config blob {}: {e}", path.display());
    }
}

fn set_tag(tx: &Tx<'_>, tag: &Reference, id: &str) -> Result<()> {
    tx.sql().execute(
        "INSERT OR REPLACE INTO tags (reference, image_id) VALUES (?1, ?2)",
        params![tag.to_string(), id],
    )?;
    Ok(())
}

fn untag(tx: &Tx<'_>, tag: &Reference) -> Result<()> {
    tx.sql()
        .execute("DELETE FROM tags WHERE reference = ?1", [tag.to_string()])?;
    Ok(())
}

fn short(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// The config's diffIDs must describe exactly the chain that ends at `top_layer`, or the
/// image would list layers it does not have.
fn check_top_layer(config: &ImageConfig, top_layer: Option<&Digest>) -> Result<()> {
    let chain = config
        .diff_ids()?
        .iter()
        .fold(None, |parent: Option<Digest>, d| {
            Some(Digest::chain(parent.as_ref(), d))
        });
    if chain.as_ref() == top_layer {
        return Ok(());
    }
    let show = |d: Option<&Digest>| d.map_or("(none)".to_string(), Digest::to_string);
    Err(Error::BadConfig {
        digest: config.digest.to_string(),
        why: format!(
            "its rootfs.diff_ids make chain {} but the top layer given is {}",
            show(chain.as_ref()),
            show(top_layer)
        ),
    })
}

fn image_row(conn: &Connection, id: &str) -> Result<Option<(Option<String>, i64, i64)>> {
    Ok(conn
        .query_row(
            "SELECT top_layer, created, size FROM images WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

fn load_image(conn: &Connection, id: &str) -> Result<Image> {
    let (top, created, size) =
        image_row(conn, id)?.ok_or_else(|| Error::NotFound(format!("no such image: {id}")))?;
    let mut stmt =
        conn.prepare("SELECT reference FROM tags WHERE image_id = ?1 ORDER BY reference")?;
    let tags = stmt
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    Ok(Image {
        id: id.to_string(),
        top_layer: top.map(|t| t.parse()).transpose()?,
        created,
        size: size as u64,
        tags,
    })
}

fn resolve_id(conn: &Connection, name_or_id: &str) -> Result<String> {
    if let Ok(reference) = name_or_id.parse::<Reference>() {
        let found: Option<String> = conn
            .query_row(
                "SELECT image_id FROM tags WHERE reference = ?1",
                [reference.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = found {
            return Ok(id);
        }
    }
    let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
    if !hex.is_empty()
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        let mut stmt =
            conn.prepare("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2 LIMIT 2")?;
        let ids = stmt
            .query_map(params![hex.len() as i64, hex], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match ids.as_slice() {
            [id] => return Ok(id.clone()),
            [] => {}
            _ => {
                return Err(Error::Conflict(format!(
                    "image ID prefix {name_or_id:?} is ambiguous; give more characters"
                )))
            }
        }
    }
    Err(Error::NotFound(format!(
        "no such image: {name_or_id} (see `strata images`; import one with `strata import`)"
    )))
}
