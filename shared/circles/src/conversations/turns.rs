//! Who speaks next (A3), as pure functions of the participants and the transcript.
//!
//! - `round_robin`: the participant after the last one who spoke (the first one to begin).
//! - `mention_based`: the first participant named as `@Name` in the last message (not the
//!   speaker of that message), else round robin.
//! - `free_form`: a facilitator model call names the next speaker as JSON; the answer is
//!   validated against a schema whose `enum` is the eligible participants, and anything else
//!   (invalid, failed, timed out) falls back to round robin.
//!
//! A conversation also ends early when a message carries an end marker (A3's list).

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    MentionBased,
    FreeForm,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "round_robin" => Strategy::RoundRobin,
            "mention_based" => Strategy::MentionBased,
            "free_form" => Strategy::FreeForm,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::MentionBased => "mention_based",
            Strategy::FreeForm => "free_form",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub id: i64,
    pub name: String,
}

/// The index of the participant after `last` (the first when nobody spoke yet or `last` is
/// not a participant).
pub fn round_robin(participants: &[Participant], last: Option<i64>) -> usize {
    if participants.is_empty() {
        return 0;
    }
    match last.and_then(|l| participants.iter().position(|p| p.id == l)) {
        Some(i) => (i + 1) % participants.len(),
        None => 0,
    }
}

/// Indexes of the participants mentioned as `@Name` in `text`, in order of appearance, each
/// once. Names are matched case-insensitively, the longest name first, and must end at a
/// non-alphanumeric character.
pub fn mentions(text: &str, participants: &[Participant]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..participants.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(participants[i].name.chars().count()));
    let lower = text.to_lowercase();
    let mut found: Vec<(usize, usize)> = Vec::new();
    for (at, _) in lower.match_indices('@') {
        let rest = &lower[at + 1..];
        for &i in &order {
            let name = participants[i].name.to_lowercase();
            if name.is_empty() || !rest.starts_with(&name) {
                continue;
            }
            let boundary = rest[name.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_');
            if boundary {
                if !found.iter().any(|(_, j)| *j == i) {
                    found.push((at, i));
                }
                break;
            }
        }
    }
    found.into_iter().map(|(_, i)| i).collect()
}

/// The next speaker under `mention_based`: the first participant mentioned in the last
/// message other than its speaker, else round robin.
pub fn by_mention(
    participants: &[Participant],
    last_text: Option<&str>,
    last: Option<i64>,
) -> usize {
    if let Some(text) = last_text
        && let Some(i) = mentions(text, participants)
            .into_iter()
            .find(|&i| Some(participants[i].id) != last)
    {
        return i;
    }
    round_robin(participants, last)
}

/// Who may speak next under `free_form`: everyone but the last speaker (everyone when alone).
pub fn eligible(participants: &[Participant], last: Option<i64>) -> Vec<usize> {
    let others: Vec<usize> = (0..participants.len())
        .filter(|&i| Some(participants[i].id) != last)
        .collect();
    if others.is_empty() {
        (0..participants.len()).collect()
    } else {
        others
    }
}

/// The facilitator's answer schema: `{"next_speaker": <one of the eligible names>}`.
pub fn facilitator_schema(participants: &[Participant], eligible: &[usize]) -> Value {
    let names: Vec<&str> = eligible
        .iter()
        .map(|&i| participants[i].name.as_str())
        .collect();
    json!({
        "type": "object",
        "properties": {"next_speaker": {"type": "string", "enum": names}},
        "required": ["next_speaker"]
    })
}

/// The facilitator's choice if its answer is valid.
pub fn facilitator_choice(
    answer: &str,
    participants: &[Participant],
    eligible: &[usize],
) -> Option<usize> {
    let raw = crate::review::extract_object(answer)?;
    let value: Value = serde_json::from_str(raw).ok()?;
    let validator = jsonschema::validator_for(&facilitator_schema(participants, eligible)).ok()?;
    if !validator.is_valid(&value) {
        return None;
    }
    let name = value["next_speaker"].as_str()?;
    eligible
        .iter()
        .copied()
        .find(|&i| participants[i].name == name)
}

const END_MARKERS: [&str; 7] = [
    "[terminé]",
    "[done]",
    "[fin]",
    "[complete]",
    "nous avons terminé",
    "c'est tout pour",
    "voilà les scénarios",
];

/// A message that ends the conversation (A3's markers, case-insensitive).
pub fn ends_conversation(text: &str) -> bool {
    let lower = text.to_lowercase();
    END_MARKERS.iter().any(|m| lower.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(names: &[&str]) -> Vec<Participant> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Participant {
                id: i as i64 + 10,
                name: n.to_string(),
            })
            .collect()
    }

    #[test]
    fn round_robin_order() {
        let p = people(&["Ann", "Bob", "Cid"]);
        assert_eq!(round_robin(&p, None), 0);
        assert_eq!(round_robin(&p, Some(10)), 1);
        assert_eq!(round_robin(&p, Some(12)), 0);
        assert_eq!(round_robin(&p, Some(99)), 0);
    }

    #[test]
    fn mentions_pick_the_named_participant() {
        let p = people(&["Ann", "Bob", "Bob Smith"]);
        assert_eq!(mentions("@bob smith, and @Ann?", &p), vec![2, 0]);
        assert_eq!(
            mentions("@Bobby is not here, mail ann@x.org", &p),
            Vec::<usize>::new()
        );
        assert_eq!(
            by_mention(&p, Some("What do you think, @Bob?"), Some(10)),
            1
        );
        // Its own name does not hand the turn to itself.
        assert_eq!(by_mention(&p, Some("I, @Ann, agree"), Some(10)), 1);
        assert_eq!(by_mention(&p, Some("no mention"), Some(11)), 2);
    }

    #[test]
    fn facilitator_answers_are_validated() {
        let p = people(&["Ann", "Bob", "Cid"]);
        let e = eligible(&p, Some(11));
        assert_eq!(e, vec![0, 2]);
        assert_eq!(
            facilitator_choice("```json\n{\"next_speaker\": \"Cid\"}\n```", &p, &e),
            Some(2)
        );
        assert_eq!(
            facilitator_choice(r#"{"next_speaker": "Bob"}"#, &p, &e),
            None,
            "last speaker"
        );
        assert_eq!(
            facilitator_choice(r#"{"next_speaker": "Zed"}"#, &p, &e),
            None
        );
        assert_eq!(facilitator_choice("Cid", &p, &e), None);
        let alone = people(&["Ann"]);
        assert_eq!(eligible(&alone, Some(10)), vec![0]);
    }

    #[test]
    fn end_markers() {
        assert!(ends_conversation("Voilà. [DONE]"));
        assert!(ends_conversation("Nous avons terminé !"));
        assert!(!ends_conversation("Not done yet"));
    }
}
