//! `strata check` of overlay2's own records: each layer's `link` file and the `l/` short link
//! it names, its `lower` file (which must list its parents' short names, topmost first), and
//! the leftovers [`Maintenance::cleanup`] removes. Docker's most common broken stores after a
//! crash are exactly these: an empty `link` or `lower`, or a dangling `l/` entry.

use super::*;

impl Overlay2 {
    pub(super) fn check_records(&self, id: &str, parent: Option<&str>) -> Result<Vec<String>> {
        let dir = self.existing_layer(id)?;
        let mut problems = Vec::new();
        match self.short_name(id) {
            Err(e) => problems.push(format!("link file: {e}")),
            Ok(short) => match self.resolve_short(&short) {
                Ok(diff) if diff == dir.join("diff") => {}
                Ok(other) => problems.push(format!(
                    "short link {} points at {}, not at this layer's diff dir",
                    self.short_link(&short).display(),
                    other.display()
                )),
                Err(e) => problems.push(format!("short link: {e}")),
            },
        }
        let lower = dir.join("lower");
        let expected = match parent {
            Some(p) => self.child_lowers(p).map_err(|e| (p, e)),
            None => Ok(Vec::new()),
        };
        match (expected, self.lower_shorts(id)) {
            (Ok(want), Ok(got)) if want == got => {}
            (Ok(want), Ok(got)) => problems.push(format!(
                "{} lists {} parents ({}), the layer has {} ({})",
                lower.display(),
                got.len(),
                got.join(":"),
                want.len(),
                want.join(":")
            )),
            (_, Err(e)) => problems.push(format!("lower file: {e}")),
            (Err((p, e)), Ok(_)) => problems.push(format!(
                "{} cannot be checked: parent layer {p}: {e}",
                lower.display()
            )),
        }
        Ok(problems)
    }

    /// Makes `link`, its `l/` entry and `lower` right again: keeps a valid short name, else
    /// reuses an `l/` entry that already points here, else makes a new one; `lower` is
    /// rebuilt from the parent's (already repaired) records.
    pub(super) fn repair_records(&self, id: &str, parent: Option<&str>) -> Result<()> {
        let dir = self.existing_layer(id)?;
        let diff = dir.join("diff");
        let recorded = self.short_name(id).ok();
        let short = match &recorded {
            Some(s) if self.resolve_short(s).ok().as_ref() == Some(&diff) => s.clone(),
            Some(s) if std::fs::symlink_metadata(self.short_link(s)).is_err() => {
                let link = self.short_link(s);
                symlink(format!("../{id}/diff"), &link).ctx_path("creating link", &link)?;
                sync_dir(&self.home.join(LINK_DIR))?;
                s.clone()
            }
            _ => match self.link_pointing_at(&diff)? {
                Some(s) => s,
                None => self.make_short_link(id)?,
            },
        };
        if recorded.as_ref() != Some(&short) {
            write_atomic(&dir, "link", short.as_bytes())?;
        }
        let lowers = match parent {
            Some(p) => self.child_lowers(p)?,
            None => Vec::new(),
        };
        if self.lower_shorts(id).ok().as_ref() != Some(&lowers) {
            if lowers.is_empty() {
                let path = dir.join("lower");
                std::fs::remove_file(&path).ctx_path("removing", &path)?;
                sync_dir(&dir)?;
            } else {
                let text: Vec<String> = lowers.iter().map(|s| format!("l/{s}")).collect();
                write_atomic(&dir, "lower", text.join(":").as_bytes())?;
            }
        }
        Ok(())
    }

    /// A short name whose `l/` link already points at `diff`.
    fn link_pointing_at(&self, diff: &Path) -> Result<Option<String>> {
        let links = self.home.join(LINK_DIR);
        for entry in std::fs::read_dir(&links).ctx_path("listing", &links)? {
            let short = entry.ctx_path("listing", &links)?.file_name();
            let short = short.to_string_lossy();
            if check_short(&short).is_ok()
                && self.resolve_short(&short).ok().as_deref() == Some(diff)
            {
                return Ok(Some(short.into_owned()));
            }
        }
        Ok(None)
    }

    /// Dangling `l/` links and `.tmp/` entries: what `cleanup` removes.
    pub(super) fn cleanup_candidates(&self) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        let links = self.home.join(LINK_DIR);
        for entry in std::fs::read_dir(&links).ctx_path("listing", &links)? {
            let entry = entry.ctx_path("listing", &links)?;
            let short = entry.file_name().to_string_lossy().into_owned();
            let target = self.resolve_short(&short);
            let live = target.as_ref().is_ok_and(|diff| diff.is_dir());
            if !live && entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let why = match target {
                    Ok(diff) => format!("dangling: {} does not exist", diff.display()),
                    Err(e) => e.to_string(),
                };
                found.push((format!("{LINK_DIR}/{short}"), why));
            }
        }
        let tmp = self.home.join(TMP_DIR);
        for entry in std::fs::read_dir(&tmp).ctx_path("listing", &tmp)? {
            let name = entry.ctx_path("listing", &tmp)?.file_name();
            found.push((
                format!("{TMP_DIR}/{}", name.to_string_lossy()),
                "scratch of an interrupted create or remove".into(),
            ));
        }
        Ok(found)
    }
}
