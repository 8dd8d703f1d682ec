//! The model manifest: which models exist, where their bytes come from, and what they must hash to.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub profile: std::collections::BTreeMap<String, Profile>,
    pub model: Vec<ModelSpec>,
}

/// A named pair of models: what `--profile` selects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub asr: String,
    pub llm: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Asr,
    Llm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub kind: ModelKind,
    /// ASR: the language to force.
    #[serde(default)]
    pub language: Option<String>,
    /// File name in the model store.
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub license: String,
    /// What the model is for on this appliance, for its model card.
    pub intended_use: String,
    /// What it gets wrong, for its model card.
    pub limits: String,
    pub source: Source,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub format: Format,
    pub packages: Vec<Package>,
    /// Files inside the installed packages, concatenated in this order.
    pub files: Vec<String>,
    /// CTranslate2 only: the vocabulary file inside the packages.
    #[serde(default)]
    pub vocabulary: Option<String>,
    /// CTranslate2 only: the assembled source's hash, checked before conversion.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The assembled bytes are the model (GGUF).
    Gguf,
    /// The assembled bytes are a CTranslate2 Whisper model to convert to ggml.
    Ctranslate2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("model manifest is invalid: {0}")]
    Invalid(String),
    #[error("no profile {0:?} (profiles: {1})")]
    NoProfile(String, String),
    #[error("no model {0:?} in the manifest")]
    NoModel(String),
}

const BUILTIN: &str = include_str!("../models.toml");

impl Manifest {
    /// The manifest shipped with this build.
    pub fn builtin() -> Manifest {
        Manifest::parse(BUILTIN).expect("the shipped manifest is valid")
    }

    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        toml::from_str(text).map_err(|e| ManifestError::Invalid(e.to_string()))
    }

    pub fn model(&self, name: &str) -> Result<&ModelSpec, ManifestError> {
        self.model
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ManifestError::NoModel(name.into()))
    }

    /// The ASR and LLM models of a profile.
    pub fn profile(&self, name: &str) -> Result<(&ModelSpec, &ModelSpec), ManifestError> {
        let p = self.profile.get(name).ok_or_else(|| {
            ManifestError::NoProfile(name.into(), self.profile.keys().cloned().collect::<Vec<_>>().join(", "))
        })?;
        Ok((self.model(&p.asr)?, self.model(&p.llm)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_resolve_to_one_asr_and_one_llm() {
        let m = Manifest::builtin();
        for profile in ["test", "default"] {
            let (asr, llm) = m.profile(profile).unwrap();
            assert_eq!(asr.kind, ModelKind::Asr);
            assert_eq!(llm.kind, ModelKind::Llm);
            assert_eq!(asr.sha256.len(), 64, "{} has a full SHA-256", asr.name);
            assert_eq!(llm.sha256.len(), 64, "{} has a full SHA-256", llm.name);
        }
        assert!(matches!(m.profile("nope"), Err(ManifestError::NoProfile(..))));
    }
}
