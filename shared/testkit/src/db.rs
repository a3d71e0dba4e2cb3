//! Throwaway databases.

use std::path::Path;
use std::str::FromStr;

use tokio_postgres::NoTls;

/// Where tests create their databases: `GATHERING_TEST_DATABASE_URL`, else `DATABASE_URL`,
/// else the project-local cluster of `scripts/pg.sh`.
pub fn base_url() -> String {
    std::env::var("GATHERING_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://gathering@127.0.0.1:54329/gathering".to_string())
}

/// `url` with its database name replaced.
pub fn url_for(base: &str, dbname: &str) -> String {
    let (prefix, rest) = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => (&base[..i], &base[i + 1..]),
        _ => (base, ""),
    };
    let query = rest.find('?').map(|i| &rest[i..]).unwrap_or("");
    format!("{prefix}/{dbname}{query}")
}

/// A database that exists for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDb {
    /// Creates a fresh, migrated database.
    pub async fn new() -> TestDb {
        let base = base_url();
        let admin_url = url_for(&base, "postgres");
        let template = ensure_template(&base, &admin_url).await;
        let name = format!("gt_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&admin_url).await;
        admin
            // sql-identifier: test database names are generated here from hex digits.
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            ))
            .await
            .expect("create test database");
        let url = url_for(&base, &name);
        TestDb {
            name,
            url,
            admin_url,
        }
    }

    /// Creates an empty database (no schema at all), for tests of migrating itself.
    pub async fn empty() -> TestDb {
        let base = base_url();
        let admin_url = url_for(&base, "postgres");
        let name = format!("gt_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&admin_url).await;
        admin
            // sql-identifier: test database names are generated here from hex digits.
            .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
            .await
            .expect("create empty test database");
        let url = url_for(&base, &name);
        TestDb {
            name,
            url,
            admin_url,
        }
    }

    /// A pool on this database.
    pub fn pool(&self, max_size: usize) -> gathering_db::Pool {
        gathering_db::connect(
            &self.url,
            &gathering_db::PoolOptions {
                max_size,
                ..Default::default()
            },
        )
        .expect("pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::Config::from_str(&admin_url)
                    .unwrap()
                    .connect(NoTls)
                    .await
                {
                    tokio::spawn(conn);
                    let _ = client
                        // sql-identifier: test database names are generated here from hex digits.
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let config = tokio_postgres::Config::from_str(url).expect("database URL");
    let (client, conn) = config.connect(NoTls).await.unwrap_or_else(|e| {
        panic!("cannot connect to the test cluster at {url}: {e} (run scripts/pg.sh start)")
    });
    tokio::spawn(conn);
    client
}

/// Name of the template for the current migrations, creating it when missing. Many test
/// processes start at once: an advisory lock lets one build it while the others wait.
async fn ensure_template(base: &str, admin_url: &str) -> String {
    let digest = migrations_digest();
    let name = format!("gt_tpl_{}", &digest[..16]);
    let lock_key = i64::from_str_radix(&digest[..15], 16).expect("hex digest");
    let admin = connect(admin_url).await;
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&lock_key])
        .await
        .expect("lock");
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("look up template")
        .is_some();
    if !exists {
        let building = format!("{name}_building");
        admin
            // sql-identifier: test database names are generated here from hex digits.
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .await
            .expect("drop stale template");
        // sql-identifier: test database names are generated here from hex digits.
        admin
            .batch_execute(&format!("CREATE DATABASE \"{building}\""))
            .await
            .expect("create template");
        gathering_db::migrate(&url_for(base, &building))
            .await
            .expect("migrate template");
        // Renaming last means a half-built template is never used.
        admin
            // sql-identifier: test database names are generated here from hex digits.
            .batch_execute(&format!(
                "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
            ))
            .await
            .expect("rename template");
    }
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&lock_key])
        .await
        .expect("unlock");
    name
}

/// A digest of every migration file's name and content.
fn migrations_digest() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for f in files {
        ctx.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        ctx.update(&std::fs::read(&f).expect("read migration"));
    }
    hex::encode(ctx.finish())
}

#[cfg(test)]
mod tests {
    use super::url_for;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(url_for("postgres://u@h:5/db", "x"), "postgres://u@h:5/x");
        assert_eq!(
            url_for("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(url_for("postgres://u@h:5", "x"), "postgres://u@h:5/x");
    }
}
