//! Signing keys: created once under concurrent starts, sealed at rest, rotated with overlap.

use std::collections::HashMap;
use std::time::Duration;

use gathering_auth::keys;
use gathering_core::Environment;
use gathering_core::seal::MasterKey;
use gathering_testkit::TestDb;

fn master() -> MasterKey {
    MasterKey::from_vars(&HashMap::<String, String>::new(), Environment::Development).unwrap()
}

const MONTH: Duration = Duration::from_secs(30 * 86400);
const OVERLAP: Duration = Duration::from_secs(1200);

#[tokio::test]
async fn concurrent_starts_create_one_key_sealed_at_rest() {
    let db = TestDb::new().await;
    let pool = db.pool(8);
    let master = master();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (pool, master) = (pool.clone(), master.clone());
        tasks.push(tokio::spawn(async move {
            keys::load_or_rotate(&pool, &master, MONTH, OVERLAP)
                .await
                .unwrap()
                .kid
        }));
    }
    let mut kids = Vec::new();
    for t in tasks {
        kids.push(t.await.unwrap());
    }
    kids.dedup();
    assert_eq!(kids.len(), 1, "one key for all");
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT public_key, private_key_sealed FROM auth.signing_keys",
            &[],
        )
        .await
        .unwrap();
    let (public, sealed): (Vec<u8>, Vec<u8>) = (row.get(0), row.get(1));
    assert_eq!(public.len(), 32);
    let opened = master
        .open(&format!("signing-key:{}", kids[0]), &sealed)
        .unwrap();
    assert!(
        !sealed.windows(opened.len()).any(|w| w == opened.as_slice()),
        "private key not stored in clear"
    );
    let other = MasterKey::parse(&"42".repeat(32)).unwrap();
    assert!(
        other
            .open(&format!("signing-key:{}", kids[0]), &sealed)
            .is_err()
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_key_verifying_through_the_overlap() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let first = keys::load_or_rotate(&pool, &master(), MONTH, OVERLAP)
        .await
        .unwrap();
    let second = keys::load_or_rotate(&pool, &master(), Duration::ZERO, OVERLAP)
        .await
        .unwrap();
    assert_ne!(first.kid, second.kid, "an old key is rotated");
    let published = keys::public_keys(&pool).await.unwrap();
    let kids: Vec<_> = published.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(
        kids,
        vec![second.kid.as_str(), first.kid.as_str()],
        "both verify, newest first"
    );
    let retired = published.iter().find(|k| k.kid == first.kid).unwrap();
    let left = retired.expires_at.unwrap() - chrono::Utc::now();
    assert!(
        left.num_seconds() > 1100 && left.num_seconds() <= 1200,
        "{left}"
    );
    let again = keys::load_or_rotate(&pool, &master(), MONTH, OVERLAP)
        .await
        .unwrap();
    assert_eq!(again.kid, second.kid, "the new key signs from now on");
}
