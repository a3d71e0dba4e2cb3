//! Serving a dashboard build (`GATHERING_DASHBOARD_DIR`, issue 17 part 5): pages for browsers
//! with SPA fallback behind the login redirect, public hashed assets cached for a year,
//! content types, compression, revalidation, nothing outside the folder, and the API
//! untouched.

use std::path::{Path, PathBuf};

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser_sessions::client;
use crate::support::{start_auth, start_edge};

const PW: &str = "correct horse battery";
const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const SECRET: &str = "top secret outside the build";
const ASSET: &str = "assets/app-1a2b3c4d.js";

/// A build folder next to a secret file, with a symlink pointing at it.
fn build(root: &Path) -> PathBuf {
    let dash = root.join("dist");
    std::fs::create_dir_all(dash.join("assets")).unwrap();
    std::fs::write(
        dash.join("index.html"),
        "<!doctype html><title>Dash</title><script src=\"/assets/app-1a2b3c4d.js\"></script>",
    )
    .unwrap();
    std::fs::write(dash.join(ASSET), "console.log('dashboard');\n".repeat(200)).unwrap();
    std::fs::write(dash.join("robots.txt"), "User-agent: *\n").unwrap();
    std::fs::write(
        dash.join("logo.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    std::fs::write(dash.join(".env"), SECRET).unwrap();
    std::fs::write(root.join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), dash.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(root, dash.join("up")).unwrap();
    std::os::unix::fs::symlink(dash.join(ASSET), dash.join("alias.js")).unwrap();
    dash
}

/// A raw request, so the path reaches the edge exactly as written (clients normalise `..`).
async fn raw_get(base: &str, path: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn a_dashboard_build_is_served_to_browsers_and_the_api_stays() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let root = std::env::temp_dir().join(format!("gt-dash-{}", uuid::Uuid::new_v4()));
    let dash = build(&root);
    let dir = dash.display().to_string();
    let edge = start_edge(&db, &auth, &[("GATHERING_DASHBOARD_DIR", &dir)]).await;
    let base = edge.base.clone();
    let (token, _) = edge.api().user("dash@example.com", PW).await;
    let c = client();
    let get = |path: &str, accept: Option<&str>, bearer: bool| {
        let mut req = c.get(format!("{base}{path}"));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        if bearer {
            req = req.bearer_auth(&token);
        }
        req.send()
    };

    // Pages need a session: a browser without one goes to the login page.
    let r = get("/", Some(HTML), false).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2F");
    let r = get("/agents/42?tab=logs", Some(HTML), false).await.unwrap();
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fagents%2F42%3Ftab%3Dlogs"
    );
    // With one: the page, and index.html for client-side routes (SPA fallback).
    for path in ["/", "/index.html", "/agents/42", "/settings/profile"] {
        let r = get(path, Some(HTML), true).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "no-cache, private", "{path}");
        assert!(r.headers()["vary"].to_str().unwrap().contains("Accept"));
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(r.text().await.unwrap().contains("<title>Dash</title>"));
    }
    // The build's files are public; hashed names are cached for a year, others revalidated.
    let r = get("/assets/app-1a2b3c4d.js", None, false).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(r.text().await.unwrap().starts_with("console.log"));
    for (path, ct) in [
        ("/robots.txt", "text/plain; charset=utf-8"),
        ("/logo.svg", "image/svg+xml; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/alias.js", "text/javascript; charset=utf-8"),
    ] {
        let r = get(path, Some("*/*"), false).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], ct, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
    }
    let r = c
        .get(format!("{base}/{ASSET}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = c
        .get(format!("{base}/{ASSET}"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let zipped = r.bytes().await.unwrap();
    assert!(
        zipped.len() < 5200 / 4,
        "compressed: {} bytes",
        zipped.len()
    );
    let r = c.head(format!("{base}/{ASSET}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap().is_empty());

    // Nothing outside the folder, no dot files, no traversal.
    for path in [
        "/leak.txt",
        "/.env",
        "/up/secret.txt",
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
    ] {
        let answer = raw_get(&base, path).await;
        assert!(!answer.contains(SECRET), "{path} leaked: {answer}");
        assert!(!answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
    let r = get("/leak.txt", Some(HTML), true).await.unwrap();
    assert!(!r.text().await.unwrap().contains(SECRET));

    // The API: its paths for browsers too, and every path for API clients.
    let r = get("/api/agents", Some(HTML), true).await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = get("/agents", Some("application/json"), true)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("\"agents\""));
    let r = get("/", Some("application/json"), false).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["name"],
        "GatheRing API"
    );
    let r = get("/health", Some(HTML), false).await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = get("/assets/missing.js", None, false).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "not a file: the API answers"
    );
    let r = get("/login", Some(HTML), false).await.unwrap();
    assert!(r.text().await.unwrap().contains("Sign in to GatheRing"));
    edge.stop().await;

    // Without the variable `/` answers as the contract says, for browsers too.
    let plain = start_edge(&db, &auth, &[]).await;
    let r = c
        .get(format!("{}/", plain.base))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["docs"],
        "/docs"
    );
    plain.stop().await;
    auth.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}
