//! Usage per day and per key, adding up to the month's count.

use super::*;

async fn usage_per_day_and_key_adds_up_to_the_months_count(db: &TestDb) {
    let acme = account(&db.store, "acme").await;
    let keys = db.store.keys();
    let (_, first) = keys
        .create(acme, write_key(&key_name("first")), noon())
        .await
        .unwrap();
    let (_, second) = keys
        .create(acme, write_key(&key_name("second")), noon())
        .await
        .unwrap();
    let november = Period::containing(noon());
    let next_day = noon() + TimeDelta::hours(20);
    let with = |key: Option<KeyId>, at: DateTime<Utc>, events: Vec<NewEvent>| EventBatch {
        api_key_id: key,
        received_at: at,
        contexts: Vec::new(),
        events,
    };
    let ids = |prefix: &str, n: usize| -> Vec<NewEvent> {
        (0..n)
            .map(|i| event(Some(&format!("{prefix}{i}")), Some("t"), noon()))
            .collect()
    };
    let plenty = &limited(100_000);
    let record = |batch| db.store.record(acme, november, plenty, batch);
    // One call on SQLite; then a batch with a duplicate (the statements one by one); then one
    // of several statements' worth; then a session's (no key).
    record(with(Some(first.id), noon(), ids("a", 3)))
        .await
        .unwrap();
    let mut repeat = ids("a", 1);
    repeat.extend(ids("b", 1));
    assert_eq!(
        record(with(Some(first.id), noon(), repeat))
            .await
            .unwrap()
            .accepted,
        1
    );
    record(with(Some(second.id), next_day, ids("c", 1_200)))
        .await
        .unwrap();
    record(with(None, next_day, ids("d", 2))).await.unwrap();
    // Refused: nothing stored, nothing counted, per day neither.
    let used = db.store.used(acme, november).await.unwrap();
    assert_eq!(used, 1_206);
    let refused = db
        .store
        .record(
            acme,
            november,
            &limited(used + 1),
            with(Some(first.id), noon(), ids("e", 2)),
        )
        .await;
    assert!(
        matches!(refused, Err(RecordError::Exceeded(_))),
        "{refused:?}"
    );
    // December's events are December's.
    let december = november.next();
    db.store
        .record(
            acme,
            december,
            plenty,
            with(Some(first.id), december.start(), ids("f", 5)),
        )
        .await
        .unwrap();

    let usage = db.store.usage_daily(acme, november).await.unwrap();
    assert_eq!(usage.days.len(), 30, "every day of November");
    assert_eq!(usage.days[0].0, november.first_day());
    let on = |day: u32| usage.days[day as usize - 1].1;
    assert_eq!((on(26), on(27), on(28), on(29)), (0, 4, 1_202, 0));
    assert_eq!(usage.days.iter().map(|(_, n)| n).sum::<u64>(), used);
    let per_key: Vec<(KeyId, &str, u64)> = usage
        .keys
        .iter()
        .map(|k| (k.id, k.name.as_str(), k.events))
        .collect();
    assert_eq!(
        per_key,
        [(second.id, "second", 1_200), (first.id, "first", 4)]
    );
    assert_eq!(usage.keys[0].prefix, second.prefix);
    assert_eq!(usage.without_key, 2);
    let december_usage = db.store.usage_daily(acme, december).await.unwrap();
    assert_eq!(december_usage.days.len(), 31);
    assert_eq!(december_usage.days[0].1, 5);
    // Another account sees none of it.
    let globex = account(&db.store, "globex").await;
    let theirs = db.store.usage_daily(globex, november).await.unwrap();
    assert!(theirs.keys.is_empty() && theirs.days.iter().all(|(_, n)| *n == 0));
}
on_both!(usage_per_day_and_key_adds_up_to_the_months_count);
