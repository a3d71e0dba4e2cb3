//! Splitting a long document into overlapping chunks for the knowledge base (BEHAVIOUR A6):
//! only a text over 3000 characters is split; chunks are up to 2000 characters, each starting
//! 200 characters before the previous one ended; a chunk ends at the last blank line beyond its
//! first half, else at the last sentence end (`". "`, `".\n"`, `"! "`, `"? "`, tried in that
//! order) beyond its first half, else at 2000 characters. Sizes count characters, as upstream
//! does, never bytes.

/// Texts up to this many characters stay whole.
pub const CHUNK_ABOVE: usize = 3000;
pub const CHUNK_SIZE: usize = 2000;
pub const OVERLAP: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Trimmed text of the chunk.
    pub content: String,
    /// Character offsets in the document: `start..end`.
    pub start: usize,
    pub end: usize,
    pub index: usize,
}

/// The last occurrence of `pat` starting in `text[from..to]` (character offsets), as Python's
/// `str.rfind(pat, from, to)`: the whole pattern must fit before `to`.
fn rfind(text: &[char], pat: &str, from: usize, to: usize) -> Option<usize> {
    let pat: Vec<char> = pat.chars().collect();
    if to < from + pat.len() {
        return None;
    }
    (from..=to - pat.len())
        .rev()
        .find(|&i| text[i..i + pat.len()] == pat[..])
}

/// `text` in chunks of `size` characters overlapping by `overlap` (a single chunk when it
/// fits).
pub fn chunk_text(text: &str, size: usize, overlap: usize) -> Vec<Chunk> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n <= size {
        return vec![Chunk {
            content: text.to_owned(),
            start: 0,
            end: n,
            index: 0,
        }];
    }
    let half = size / 2;
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < n {
        let mut end = (start + size).min(n);
        if end < n {
            match rfind(&chars, "\n\n", start, end) {
                Some(p) if p > start + half => end = p + 2,
                _ => {
                    for sep in [". ", ".\n", "! ", "? "] {
                        if let Some(p) =
                            rfind(&chars, sep, start, end).filter(|p| *p > start + half)
                        {
                            end = p + sep.chars().count();
                            break;
                        }
                    }
                }
            }
        }
        let content: String = chars[start..end].iter().collect();
        chunks.push(Chunk {
            content: content.trim().to_owned(),
            start,
            end,
            index: chunks.len(),
        });
        // `end - overlap > start` always: a cut lands beyond half a chunk, and the overlap is
        // smaller than half a chunk.
        start = if end < n {
            end.saturating_sub(overlap).max(start + 1)
        } else {
            n
        };
    }
    chunks
}

/// The document's chunks under the A6 rule: whole when not over [`CHUNK_ABOVE`] characters or
/// when chunking is off.
pub fn split(text: &str, chunk_large_docs: bool) -> Vec<Chunk> {
    if chunk_large_docs && text.chars().count() > CHUNK_ABOVE {
        chunk_text(text, CHUNK_SIZE, OVERLAP)
    } else {
        vec![Chunk {
            content: text.to_owned(),
            start: 0,
            end: text.chars().count(),
            index: 0,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        let t = "a".repeat(3000);
        let c = split(&t, true);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].content.len(), 3000);
        assert_eq!(split(&"b".repeat(5000), false).len(), 1);
    }

    #[test]
    fn unbroken_text_cuts_at_size_with_overlap() {
        let t = "x".repeat(5000);
        let c = split(&t, true);
        let spans: Vec<(usize, usize)> = c.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(spans, vec![(0, 2000), (1800, 3800), (3600, 5000)]);
        assert!(c.iter().enumerate().all(|(i, c)| c.index == i));
    }

    #[test]
    fn prefers_the_last_blank_line_beyond_half() {
        // A blank line at 1500 (beyond half) and a sentence end at 1900: the blank line wins.
        let mut t = "a".repeat(1500);
        t.push_str("\n\n");
        t.push_str(&"b".repeat(398));
        t.push_str(". ");
        t.push_str(&"c".repeat(3000));
        let c = split(&t, true);
        assert_eq!(c[0].end, 1502);
        assert_eq!(c[1].start, 1302);
    }

    #[test]
    fn a_blank_line_before_half_is_ignored_for_a_sentence_end() {
        let mut t = "a".repeat(500);
        t.push_str("\n\n");
        t.push_str(&"b".repeat(1198));
        t.push_str("! ");
        t.push_str(&"c".repeat(3000));
        let c = split(&t, true);
        // "! " starts at 1700: the chunk ends after it.
        assert_eq!(c[0].end, 1702);
        assert!(c[0].content.ends_with('!'));
    }

    #[test]
    fn separators_are_tried_in_order_not_by_position() {
        // ". " at 1100 and "? " at 1900: ". " is tried first and is beyond half, so it wins.
        let mut t = "a".repeat(1100);
        t.push_str(". ");
        t.push_str(&"b".repeat(798));
        t.push_str("? ");
        t.push_str(&"c".repeat(3000));
        assert_eq!(split(&t, true)[0].end, 1102);
    }

    #[test]
    fn counts_characters_not_bytes() {
        let t = "é".repeat(4000);
        let c = split(&t, true);
        assert_eq!(c[0].content.chars().count(), 2000);
        assert_eq!((c[1].start, c[1].end), (1800, 3800));
    }

    #[test]
    fn chunks_cover_the_whole_text() {
        let t: String = (0..900)
            .map(|i| format!("Sentence {i} is here. "))
            .collect();
        let c = split(&t, true);
        assert_eq!(c.last().map(|c| c.end), Some(t.chars().count()));
        for w in c.windows(2) {
            assert_eq!(w[1].start, w[0].end - OVERLAP);
            assert!(w[0].end - w[0].start <= CHUNK_SIZE);
        }
    }
}
