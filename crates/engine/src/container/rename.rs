//! `rename`.

use super::{store, Container, Containers};
use crate::error::Result;
use crate::names;

impl Containers<'_> {
    /// `rename`: a new name, refused when another container has it.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<Container> {
        let new_name = names::validate(new_name.strip_prefix('/').unwrap_or(new_name))?;
        let c = self.get(name_or_id)?;
        if c.name == new_name {
            return Ok(c);
        }
        self.stores.db.write(|tx| {
            if let Some(other) = store::by_name(tx.sql(), new_name)? {
                return Err(store::name_taken(new_name, &other));
            }
            store::rename(tx.sql(), &c.id, new_name)
        })?;
        self.get(&c.id)
    }
}
