//! Walking a project folder for the skills that read many files (analysis, docs): regular
//! files only, symlinks never followed (a link could lead out of the root), the folders the
//! filesystem skill skips (`.git`, `node_modules`, `target`, …) left out, and a bound on the
//! number of files and the depth. Blocking: call it on a blocking thread.

use std::path::{Path, PathBuf};

use super::filesystem::SKIP_DIRS;

pub(crate) const MAX_DEPTH: usize = 25;

/// Regular files under `dir` for which `keep` holds, in a stable order, at most `max`; the
/// flag says whether more were left out.
pub(crate) fn files(dir: &Path, max: usize, keep: impl Fn(&Path) -> bool) -> (Vec<PathBuf>, bool) {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((folder, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subfolders = Vec::new();
        for e in entries {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                if depth < MAX_DEPTH
                    && !SKIP_DIRS.contains(&name.as_str())
                    && !name.starts_with('.')
                {
                    subfolders.push((e.path(), depth + 1));
                }
            } else if ft.is_file() && keep(&e.path()) {
                if out.len() == max {
                    return (out, true);
                }
                out.push(e.path());
            }
        }
        // Depth-first, folders in name order.
        stack.extend(subfolders.into_iter().rev());
    }
    (out, false)
}

/// The file's extension, lower-case.
pub(crate) fn extension(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}
