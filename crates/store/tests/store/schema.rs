//! The migrations: every one runs down and up again, with data.

use super::*;

async fn migrations_run_down_and_up_again(db: &TestDb) {
    let conn = Database::connect(&db.url).await.unwrap();
    Migrator::down(&conn, None).await.unwrap();
    assert!(
        Migrator::get_applied_migrations(&conn)
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(
        Migrator::get_applied_migrations(&conn).await.unwrap().len(),
        Migrator::migrations().len()
    );
    conn.close().await.unwrap();
    // The store works on the rebuilt schema.
    let id = account(&db.store, "after-rebuild").await;
    assert_eq!(
        db.store.accounts().get(id).await.unwrap().name,
        "after-rebuild"
    );
}
on_both!(migrations_run_down_and_up_again);
