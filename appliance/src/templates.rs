//! Finding a note template by name: the clinic's folder first, then the shipped ones.

use std::path::Path;

use anyhow::{Result, bail};
use drafting::Template;

pub fn resolve(name: &str, clinic_dir: &Path) -> Result<Template> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("template name {name:?} may only contain letters, digits, '-' and '_'");
    }
    let file = clinic_dir.join(format!("{name}.toml"));
    if file.exists() {
        return Ok(Template::load(&file)?);
    }
    match Template::builtin(name) {
        Some(t) => Ok(t),
        None => bail!(
            "no template {name:?} (looked in {} and the built-in templates: soap)",
            clinic_dir.display()
        ),
    }
}
