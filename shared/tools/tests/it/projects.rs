//! Projects as a library: detection, folder browsing and its refusals, the store, and the
//! root a project resolves to (`repository_path` or `local_path`).

use gathering_testkit::TestDb;
use gathering_tools::project::browse::browse;
use gathering_tools::project::detect::detect;
use gathering_tools::project::store::{self, NewProject, ProjectPatch};
use gathering_tools::project::{ProjectError, ProjectRoots, resolve_root};
use serde_json::json;

use crate::helpers::TempDir;

fn sample_project() -> TempDir {
    let dir = TempDir::new();
    dir.write("pyproject.toml", "[project]\nname = \"demo-api\"\ndependencies = [\"fastapi>=0.100\", \"pydantic\"]\n\n[tool.ruff]\nline-length = 100\n\n[dependency-groups]\ndev = [\"pytest\"]\n");
    dir.write("package.json", r#"{"name": "demo-web", "scripts": {"dev": "vite", "test": "vitest"}, "devDependencies": {"typescript": "5", "vite": "5", "vitest": "1", "react": "18"}}"#);
    dir.write(".venv/pyvenv.cfg", "home = /usr/bin\nversion = 3.11.7\n");
    dir.write(".git/HEAD", "ref: refs/heads/develop\n");
    dir.write(
        ".git/config",
        "[remote \"origin\"]\n\turl = git@example.com:team/demo.git\n",
    );
    dir.write("Makefile", "test:\n\tpytest\nlint:\n\truff check .\n");
    dir.write(
        ".editorconfig",
        "[*]\nindent_style = space\nindent_size = 4\n",
    );
    dir.write("README.md", "# Demo\n");
    dir.write(".github/workflows/ci.yml", "on: push\n");
    dir
}

#[test]
fn detection_reads_the_stack() {
    let dir = sample_project();
    let d = detect(dir.path());
    // package.json is read after pyproject.toml: its name wins.
    assert_eq!(d.name, "demo-web");
    assert_eq!(d.branch.as_deref(), Some("develop"));
    assert_eq!(
        d.repository_url.as_deref(),
        Some("git@example.com:team/demo.git")
    );
    assert_eq!(d.languages, ["javascript", "python", "typescript"]);
    for fw in ["fastapi", "pydantic", "pytest", "react", "vite", "vitest"] {
        assert!(
            d.frameworks.contains(&fw.to_owned()),
            "{fw}: {:?}",
            d.frameworks
        );
    }
    assert_eq!(d.python_version.as_deref(), Some("3.11.7"));
    assert!(d.venv_path.as_deref().unwrap().ends_with(".venv"));
    assert_eq!(d.conventions["line_length"], 100);
    assert_eq!(d.conventions["indent_size"], 4);
    assert_eq!(d.commands["test"], "make test", "Makefile targets win");
    assert_eq!(d.commands["dev"], "npm run dev");
    assert_eq!(d.tools["linter"], "ruff");
    assert_eq!(d.tools["ci"], "github-actions");
    assert!(d.key_files.get("README.md").is_some() && d.key_files.get("pyproject.toml").is_some());
    assert!(d.notes.iter().any(|n| n.contains("branch develop")));

    let rust = TempDir::new();
    rust.write(
        "Cargo.toml",
        "[package]\nname = \"crab\"\n\n[dependencies]\naxum = \"0.8\"\ntokio = \"1\"\n",
    );
    let d = detect(rust.path());
    assert_eq!(
        (d.name.as_str(), d.languages.as_slice()),
        ("crab", &["rust".to_owned()][..])
    );
    assert!(d.frameworks.contains(&"axum".to_owned()));
    assert_eq!(d.commands["test"], "cargo test");

    // Manifests are read by a TOML parser: comments, a name in a later section with the same
    // key elsewhere, and dotted tables are read as TOML means them.
    let poetry = TempDir::new();
    poetry.write(
        "pyproject.toml",
        "[tool.black]\nname = \"not-this\"\nline-length = 88 # black's default\n\n[tool.poetry]\nname = \"poetry-app\" # the app\n",
    );
    let d = detect(poetry.path());
    assert_eq!(d.name, "poetry-app");
    assert_eq!(d.conventions["line_length"], 88);
    let broken = TempDir::new();
    broken.write("Cargo.toml", "[package\nname = \"x\"\n");
    let d = detect(broken.path());
    assert_eq!(d.name, broken.path().file_name().unwrap().to_string_lossy());
    assert_eq!(d.languages, ["rust"]);
}

#[test]
fn browsing_lists_and_refuses() {
    let dir = TempDir::new();
    dir.write("proj/Cargo.toml", "[package]\nname='x'\n");
    dir.write("plain/file.txt", "x");
    dir.write(".hidden/x", "x");
    dir.write("b.txt", "12345");
    let l = browse(Some(dir.path().to_str().unwrap()), false, dir.path()).unwrap();
    let names: Vec<&str> = l.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["plain", "proj", "b.txt"]);
    assert!(l.entries[1].is_project && !l.entries[0].is_project);
    assert_eq!(l.entries[2].size, Some(5));
    assert_eq!(
        l.parent_path.as_deref(),
        dir.path().parent().and_then(|p| p.to_str())
    );
    assert!(!l.can_create_project);
    let l = browse(
        Some(dir.path().join("proj").to_str().unwrap()),
        true,
        dir.path(),
    )
    .unwrap();
    assert!(l.can_create_project);
    let l = browse(Some(dir.path().to_str().unwrap()), true, dir.path()).unwrap();
    assert!(l.entries.iter().any(|e| e.name == ".hidden"));
    let l = browse(None, false, &dir.path().join("proj")).unwrap();
    assert!(l.current_path.ends_with("proj"));

    for forbidden in [
        "/proc",
        "/proc/self",
        "/sys/kernel",
        "/dev",
        "/boot",
        "/root",
    ] {
        assert!(
            matches!(
                browse(Some(forbidden), false, dir.path()),
                Err(ProjectError::Forbidden(_))
            ),
            "{forbidden}"
        );
    }
    // A symlink into a forbidden folder is refused after resolution.
    std::os::unix::fs::symlink("/proc", dir.path().join("sneaky")).unwrap();
    assert!(matches!(
        browse(
            Some(dir.path().join("sneaky").to_str().unwrap()),
            false,
            dir.path()
        ),
        Err(ProjectError::Forbidden(_))
    ));
    for bad in ["relative/path", "/does/not/exist", "/a\0b"] {
        assert!(
            matches!(
                browse(Some(bad), false, dir.path()),
                Err(ProjectError::Invalid(_))
            ),
            "{bad}"
        );
    }
    let file = dir.path().join("b.txt");
    assert!(matches!(
        browse(Some(file.to_str().unwrap()), false, dir.path()),
        Err(ProjectError::Invalid(_))
    ));
}

#[tokio::test]
async fn store_crud_and_circle_links() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let client = pool.get().await.unwrap();
    let dir = sample_project();
    let path = dir.path().to_str().unwrap().to_owned();
    let new = NewProject {
        name: "My Demo".into(),
        path: path.clone(),
        description: Some("d".into()),
        detection: Some(detect(dir.path())),
    };
    let p = store::create(&client, &new).await.unwrap();
    assert_eq!(
        (p.name.as_str(), p.display_name.as_deref()),
        ("demo-web", Some("My Demo"))
    );
    assert_eq!(p.branch, "develop");
    assert_eq!(
        (p.local_path.as_deref(), p.repository_path.as_deref()),
        (Some(path.as_str()), Some(path.as_str()))
    );
    let j = p.to_json();
    assert_eq!(j["path"], path.as_str());
    assert_eq!(j["circle_count"], 0);
    assert!(j["created_at"].as_str().unwrap().ends_with("+00:00"));
    assert!(matches!(
        store::create(&client, &new).await,
        Err(ProjectError::Conflict(_))
    ));

    let patch = ProjectPatch {
        description: Some("new".into()),
        notes: Some(vec!["n1".into()]),
        tools: Some(json!({"x": 1})),
        ..Default::default()
    };
    let p2 = store::update(&client, p.id, &patch).await.unwrap().unwrap();
    assert_eq!(
        (p2.description.as_deref(), p2.notes.as_slice()),
        (Some("new"), &["n1".to_owned()][..])
    );
    assert_eq!(p2.tools, json!({"x": 1}));
    assert_eq!(p2.branch, "develop", "untouched fields stay");
    assert!(
        store::update(&client, 999_999, &patch)
            .await
            .unwrap()
            .is_none()
    );

    let circle: i64 = client
        .query_one(
            "INSERT INTO circle.circles (name) VALUES ('core') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        store::link_circle(&client, p.id, circle, true)
            .await
            .unwrap(),
        "linked"
    );
    assert_eq!(
        store::link_circle(&client, p.id, circle, true)
            .await
            .unwrap(),
        "already_linked"
    );
    assert!(matches!(
        store::link_circle(&client, p.id, 424242, false).await,
        Err(ProjectError::Missing(_))
    ));
    assert!(matches!(
        store::link_circle(&client, 424242, circle, false).await,
        Err(ProjectError::NotFound(424242))
    ));
    let circles = store::circles(&client, p.id).await.unwrap();
    assert_eq!(
        (
            circles[0]["circle_name"].as_str(),
            circles[0]["is_primary"].as_bool()
        ),
        (Some("core"), Some(true))
    );
    assert_eq!(
        store::get(&client, p.id)
            .await
            .unwrap()
            .unwrap()
            .circle_count,
        1
    );
    assert!(store::unlink_circle(&client, p.id, circle).await.unwrap());
    assert!(!store::unlink_circle(&client, p.id, circle).await.unwrap());

    let listed = store::list(&client, Some("active")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(p2.prompt_context().contains("demo-web") || p2.prompt_context().contains("My Demo"));
    assert!(store::delete(&client, p.id).await.unwrap());
    assert!(store::get(&client, p.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_project_resolves_to_its_root_from_either_path_column() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let client = pool.get().await.unwrap();
    let a = TempDir::new();
    let b = TempDir::new();
    let by_local: i64 = client
        .query_one(
            "INSERT INTO project.projects (name, local_path) VALUES ('a', $1) RETURNING id",
            &[&a.path().to_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    let by_repo: i64 = client
        .query_one(
            "INSERT INTO project.projects (name, repository_path) VALUES ('b', $1) RETURNING id",
            &[&b.path().to_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    let roots = ProjectRoots::new(vec![std::env::temp_dir()]);
    assert_eq!(
        resolve_root(&client, by_local, &roots)
            .await
            .unwrap()
            .path(),
        a.path()
    );
    let root = resolve_root(&client, by_repo, &roots).await.unwrap();
    assert_eq!((root.path(), root.id()), (b.path(), Some(by_repo)));
    assert!(matches!(
        resolve_root(&client, 777_777, &roots).await,
        Err(ProjectError::NotFound(777_777))
    ));
    let gone: i64 = client
        .query_one("INSERT INTO project.projects (name, local_path) VALUES ('gone', '/nonexistent/gt-tools') RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    assert!(matches!(
        resolve_root(&client, gone, &roots).await,
        Err(ProjectError::Invalid(_))
    ));
    // A project registered before the roots changed is refused on use, not served.
    let elsewhere = ProjectRoots::new(vec![std::path::PathBuf::from("/srv/gt-other-root")]);
    let refused = resolve_root(&client, by_local, &elsewhere).await;
    assert!(
        matches!(&refused, Err(ProjectError::Invalid(m)) if m.contains("outside the project roots")),
        "{refused:?}"
    );
}
