//! The system prompt (BEHAVIOUR A1): the persona's own prompt, its role, the project, its
//! specialisations, what it remembers, and a resume note after a long pause. Upstream prompts
//! are in French; so are these section titles.

use crate::profile::Profile;

/// What goes into one system prompt.
#[derive(Debug, Default)]
pub struct PromptParts<'a> {
    pub project: Option<&'a str>,
    pub memories: &'a [String],
    /// A summary of the session when it resumes after being idle.
    pub resume: Option<&'a str>,
    pub current_task: Option<&'a str>,
    pub extra: Option<&'a str>,
}

pub fn system_prompt(profile: &Profile, parts: &PromptParts<'_>) -> String {
    let mut out = String::new();
    if let Some(base) = profile
        .base_prompt
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        out.push_str(base.trim());
        out.push_str("\n\n");
    }
    out.push_str("## Ton Rôle\n");
    out.push_str(&format!("Tu es {}, {}.\n", profile.name, profile.role));
    if !profile.traits.is_empty() {
        out.push_str(&format!("Traits : {}.\n", profile.traits.join(", ")));
    }
    out.push_str(&format!(
        "Style de communication : {}.\n",
        profile.communication_style
    ));
    if !profile.languages.is_empty() {
        out.push_str(&format!("Langues : {}.\n", profile.languages.join(", ")));
    }
    if let Some(project) = parts.project.filter(|p| !p.trim().is_empty()) {
        out.push_str("\n## Contexte Projet\n");
        out.push_str(project.trim());
        out.push('\n');
    }
    if !profile.specializations.is_empty() {
        out.push_str("\n## Tes Spécialisations\n");
        for s in &profile.specializations {
            out.push_str(&format!("- {s}\n"));
        }
    }
    if let Some(task) = parts.current_task {
        out.push_str(&format!("\n## Tâche en cours\n{task}\n"));
    }
    if !parts.memories.is_empty() {
        out.push_str("\n## Souvenirs pertinents\n");
        for m in parts.memories {
            out.push_str(&format!("- {m}\n"));
        }
    }
    if let Some(resume) = parts.resume {
        out.push_str("\n## Reprise de Session\n");
        out.push_str(resume);
        out.push('\n');
    }
    if let Some(extra) = parts.extra {
        out.push('\n');
        out.push_str(extra);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            id: 1,
            name: "Sophie".into(),
            role: "architecte logiciel".into(),
            persona_name: Some("Architecte".into()),
            base_prompt: Some("Tu conçois des systèmes robustes.".into()),
            traits: vec!["rigoureuse".into(), "pédagogue".into()],
            communication_style: "technical".into(),
            specializations: vec!["Rust".into()],
            languages: vec!["fr".into(), "en".into()],
            temperature: 0.7,
            max_tokens: None,
            model: None,
            is_active: true,
        }
    }

    #[test]
    fn sections_in_order() {
        let memories = vec!["Le client préfère PostgreSQL".to_string()];
        let p = system_prompt(
            &profile(),
            &PromptParts {
                project: Some("GatheRing, en Rust"),
                memories: &memories,
                resume: Some("Dernier sujet : le cache"),
                ..Default::default()
            },
        );
        let order = [
            "Tu conçois",
            "## Ton Rôle",
            "Tu es Sophie, architecte logiciel.",
            "## Contexte Projet",
            "## Tes Spécialisations",
            "## Souvenirs pertinents",
            "## Reprise de Session",
        ];
        let mut at = 0;
        for part in order {
            let i = p[at..]
                .find(part)
                .unwrap_or_else(|| panic!("{part} missing or out of order in:\n{p}"));
            at += i;
        }
        let bare = system_prompt(&profile(), &PromptParts::default());
        assert!(!bare.contains("Contexte Projet") && !bare.contains("Souvenirs"));
    }
}
