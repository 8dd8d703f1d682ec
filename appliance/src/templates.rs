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
        let template = Template::load(&file)?;
        if template.name != name {
            bail!(
                "template file {} declares name {:?}; the name must match the file name",
                file.display(),
                template.name
            );
        }
        return Ok(template);
    }
    match Template::builtin(name) {
        Some(t) => Ok(t),
        None => bail!(
            "no template {name:?} (looked in {} and the built-in templates: {})",
            clinic_dir.display(),
            Template::builtin_names().collect::<Vec<_>>().join(", ")
        ),
    }
}
