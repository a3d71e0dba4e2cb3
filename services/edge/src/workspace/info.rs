//! `GET /workspace/{id}/info`: what kind of project a folder is (the dashboard shows the panels
//! of its capabilities), its size and whether it is a git repository. The type is the best
//! score of marker files (10 each), marker folders (5 each) and files with the type's
//! extensions (1 each, at most 10); ties go to the first type in [`TYPES`], no score is
//! `custom`. The walk skips the tree's excluded folders and stops after [`MAX_FILES`] files.

use std::path::Path;

use serde_json::{Value, json};

use super::tree::excluded;

/// Files the walk counts at most (the size and count are then lower bounds).
pub const MAX_FILES: usize = 20_000;

struct Kind {
    name: &'static str,
    files: &'static [&'static str],
    folders: &'static [&'static str],
    extensions: &'static [&'static str],
    capabilities: &'static [&'static str],
}

const TYPES: &[Kind] = &[
    Kind {
        name: "development",
        files: &[
            "package.json",
            "requirements.txt",
            "Cargo.toml",
            "pom.xml",
            "build.gradle",
            "go.mod",
            "Gemfile",
            "composer.json",
        ],
        folders: &[".git", "src", "tests", "test", "node_modules"],
        extensions: &["py", "js", "ts", "java", "go", "rs"],
        capabilities: &[
            "editor",
            "git",
            "terminal",
            "tests",
            "debugger",
            "diff_viewer",
        ],
    },
    Kind {
        name: "design_3d",
        files: &[],
        folders: &["models", "textures", "renders"],
        extensions: &["blend", "fbx", "obj", "gltf", "glb", "stl", "3ds"],
        capabilities: &["3d_viewer", "timeline", "render_queue", "asset_library"],
    },
    Kind {
        name: "video",
        files: &[],
        folders: &["footage", "clips"],
        extensions: &["mp4", "mov", "mkv", "avi", "webm", "prproj"],
        capabilities: &["video_player", "timeline", "effects", "export_queue"],
    },
    Kind {
        name: "finance",
        files: &["portfolio.json", "trades.csv"],
        folders: &["strategies", "backtests"],
        extensions: &["qif", "ofx"],
        capabilities: &["editor", "charts", "backtester", "portfolio", "terminal"],
    },
    Kind {
        name: "data_science",
        files: &["environment.yml", "dvc.yaml"],
        folders: &["notebooks", "data", "datasets"],
        extensions: &["ipynb", "parquet", "h5", "feather"],
        capabilities: &[
            "notebook",
            "editor",
            "visualizations",
            "datasets",
            "terminal",
        ],
    },
];

/// Info about `root` (blocking: run it off the reactor).
pub fn info(root: &Path, name: &str, is_git_repo: bool) -> Value {
    let mut ext_counts = vec![0usize; TYPES.len()];
    let (mut files, mut bytes) = (0usize, 0u64);
    let mut stack = vec![root.to_path_buf()];
    'walk: while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if excluded(&n) {
                continue;
            }
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                files += 1;
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                let ext = n.rsplit_once('.').map(|(_, x)| x.to_ascii_lowercase());
                if let Some(ext) = ext {
                    for (i, k) in TYPES.iter().enumerate() {
                        if k.extensions.contains(&ext.as_str()) {
                            ext_counts[i] += 1;
                        }
                    }
                }
                if files >= MAX_FILES {
                    break 'walk;
                }
            }
        }
    }
    let mut best: Option<(&Kind, usize)> = None;
    for (i, k) in TYPES.iter().enumerate() {
        let score = 10 * k.files.iter().filter(|f| root.join(f).is_file()).count()
            + 5 * k.folders.iter().filter(|f| root.join(f).is_dir()).count()
            + ext_counts[i].min(10);
        if score > 0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((k, score));
        }
    }
    let (kind, extra): (&str, &[&str]) = match best {
        Some((k, _)) => (k.name, k.capabilities),
        None => ("custom", &["editor"]),
    };
    let mut capabilities = vec!["file_explorer"];
    capabilities.extend_from_slice(extra);
    json!({
        "type": kind,
        "path": root.to_string_lossy(),
        "name": name,
        "file_count": files,
        "size_bytes": bytes,
        "size_mb": ((bytes as f64 / (1024.0 * 1024.0)) * 100.0).round() / 100.0,
        "is_git_repo": is_git_repo,
        "capabilities": capabilities,
    })
}
