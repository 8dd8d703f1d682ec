//! Note templates: TOML files that name a note's sections, in order, with instructions.

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Short identifier, e.g. "soap".
    pub name: String,
    /// What a person calls it, e.g. "SOAP note".
    pub title: String,
    /// Who reads the document: a clinician (the note, in clinical third person) or the patient
    /// (after-visit instructions, addressed to them in plain words).
    #[serde(default)]
    pub audience: Audience,
    #[serde(rename = "section")]
    pub sections: Vec<SectionSpec>,
    /// Set on the derived copy made by [`Template::shortened`]; never read from a file.
    #[serde(skip)]
    shortened: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    pub name: String,
    pub instruction: String,
    /// Upper bound on sentences, which also bounds generation time.
    #[serde(default = "default_max_sentences")]
    pub max_sentences: u32,
    /// Sentences from the clinic's own notes showing how this section is written (phrasing,
    /// abbreviations, order). The model is shown them for style only; their facts are not this
    /// visit's, and a draft that copied one would cite nothing that says it and be flagged.
    #[serde(default)]
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    #[default]
    Clinician,
    Patient,
}

fn default_max_sentences() -> u32 {
    6
}

/// Style examples cost prompt tokens on every draft; a few short ones show a style.
const MAX_EXAMPLES: usize = 3;
const MAX_EXAMPLE_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
#[error("template {file}, line {line}: {message}")]
pub struct TemplateError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The templates that ship with the appliance: (name, TOML).
const BUILTIN: &[(&str, &str)] = &[
    ("soap", include_str!("../templates/soap.toml")),
    ("apso", include_str!("../templates/apso.toml")),
    ("hp", include_str!("../templates/hp.toml")),
    ("progress", include_str!("../templates/progress.toml")),
    ("aci", include_str!("../templates/aci.toml")),
    (
        PATIENT_INSTRUCTIONS,
        include_str!("../templates/patient-instructions.toml"),
    ),
];

/// The template of the after-visit instructions drafted for the patient beside every note; a
/// clinic file of the same name replaces it.
pub const PATIENT_INSTRUCTIONS: &str = "patient-instructions";

impl Template {
    /// The templates that ship with the appliance.
    pub fn builtin(name: &str) -> Option<Template> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Some(Template::parse(text, &format!("builtin:{name}.toml")).expect("shipped templates are valid"))
    }

    /// Names of the shipped templates.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    pub fn load(path: &Path) -> Result<Template, TemplateError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TemplateError {
            file: file.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        Template::parse(&text, &file)
    }

    /// The same sections with half as many sentences allowed in each (at least one): a second
    /// attempt for a model that ran out of tokens.
    pub fn shortened(&self) -> Template {
        let mut t = self.clone();
        t.shortened = true;
        for s in &mut t.sections {
            s.max_sentences = s.max_sentences.div_ceil(2);
        }
        t
    }

    pub fn is_shortened(&self) -> bool {
        self.shortened
    }

    /// Parses and checks a template; errors name the file and line.
    pub fn parse(text: &str, file: &str) -> Result<Template, TemplateError> {
        let error = |offset: Option<usize>, message: String| TemplateError {
            file: file.to_string(),
            line: offset.map_or(0, |o| text[..o.min(text.len())].matches('\n').count() + 1),
            message,
        };
        let template: Template =
            toml::from_str(text).map_err(|e| error(e.span().map(|s| s.start), e.message().to_string()))?;
        let line_of = |needle: &str| text.find(needle);
        if template.sections.is_empty() {
            return Err(error(None, "a template needs at least one [[section]]".into()));
        }
        for (i, s) in template.sections.iter().enumerate() {
            let at = line_of(&format!("\"{}\"", s.name));
            if s.name.trim().is_empty() || s.name.contains(['\n', '[', ']', '#', '"']) {
                return Err(error(at, format!("section {} has an invalid name {:?}", i + 1, s.name)));
            }
            if template.sections[..i].iter().any(|p| p.name == s.name) {
                return Err(error(at, format!("section {:?} appears twice", s.name)));
            }
            if !(1..=30).contains(&s.max_sentences) {
                return Err(error(at, format!("section {:?}: max_sentences must be 1..=30", s.name)));
            }
            if s.examples.len() > MAX_EXAMPLES {
                return Err(error(
                    at,
                    format!("section {:?}: at most {MAX_EXAMPLES} examples", s.name),
                ));
            }
            for example in &s.examples {
                let at = line_of(example.as_str()).or(at);
                if example.trim().is_empty() || example.contains('\n') {
                    return Err(error(
                        at,
                        format!("section {:?}: an example must be one line of text", s.name),
                    ));
                }
                if example.chars().count() > MAX_EXAMPLE_CHARS {
                    return Err(error(
                        at,
                        format!(
                            "section {:?}: an example is longer than {MAX_EXAMPLE_CHARS} characters",
                            s.name
                        ),
                    ));
                }
            }
        }
        Ok(template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_parses_and_is_named_like_its_file() {
        for name in Template::builtin_names() {
            assert_eq!(Template::builtin(name).unwrap().name, name);
        }
    }

    #[test]
    fn soap_ships_with_four_sections() {
        let soap = Template::builtin("soap").unwrap();
        let names: Vec<_> = soap.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Subjective", "Objective", "Assessment", "Plan"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "name = \"x\"\ntitle = \"X\"\n\n[[section]]\nname = \"A\"\ninstruction = 3\n";
        let e = Template::parse(text, "clinic/x.toml").unwrap_err();
        assert_eq!(e.file, "clinic/x.toml");
        assert_eq!(e.line, 6, "{e}");
        let dup = "name = \"x\"\ntitle = \"X\"\n[[section]]\nname = \"A\"\ninstruction = \"a\"\n[[section]]\nname = \"A\"\ninstruction = \"b\"\n";
        assert!(Template::parse(dup, "d.toml").unwrap_err().message.contains("twice"));
    }

    #[test]
    fn style_examples_are_short_single_lines() {
        let with = |examples: &str| {
            format!(
                "name = \"x\"\ntitle = \"X\"\n[[section]]\nname = \"Plan\"\ninstruction = \"p\"\nexamples = {examples}\n"
            )
        };
        let ok = Template::parse(&with(r#"["Start lisinopril 10 mg daily.", "RTC 3 mo."]"#), "x.toml").unwrap();
        assert_eq!(ok.sections[0].examples.len(), 2);
        let long = format!("[\"{}\"]", "word ".repeat(80));
        let e = Template::parse(&with(&long), "x.toml").unwrap_err();
        assert!(e.message.contains("longer than"), "{e}");
        assert_eq!(e.line, 6, "{e}");
        let many = Template::parse(&with(r#"["a.", "b.", "c.", "d."]"#), "x.toml").unwrap_err();
        assert!(many.message.contains("at most 3"), "{many}");
        let two_lines = Template::parse(&with(r#"["one\ntwo"]"#), "x.toml").unwrap_err();
        assert!(two_lines.message.contains("one line"), "{two_lines}");
    }

    #[test]
    fn patient_instructions_ship_for_the_patient() {
        let t = Template::builtin(PATIENT_INSTRUCTIONS).unwrap();
        assert_eq!(t.audience, Audience::Patient);
        assert_eq!(Template::builtin("soap").unwrap().audience, Audience::Clinician);
    }
}
