//! The code monitor store contract against `PgStore`, and what only several
//! nodes on one database show: two nodes recording the same search, one wins.

use std::sync::Arc;

use herald_store::{
    FetchResult, HeadsMap, MonitorId, MonitorStore, NewMonitor, NewRepository, RepositoryId,
    RepositoryWrite, SearchRecord, SearchRecorded,
};

use crate::support::TestSchema;

herald_store::monitor_store_contract_tests!(std::future::ready(match TestSchema::new().await {
    Some(schema) => (Arc::new(schema.store().await), schema),
    None => return,
}));

fn main_at(c: char) -> HeadsMap {
    HeadsMap::from([(
        "refs/heads/main".to_owned(),
        std::iter::repeat_n(c, 40).collect(),
    )])
}

#[tokio::test]
async fn two_nodes_recording_one_search_report_it_once() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (one, two) = (schema.store().await, schema.store().await);
    let RepositoryWrite::Saved(repo) = one
        .create_repository(NewRepository {
            id: RepositoryId::new(),
            name: "github.com/acme/api".to_owned(),
            source_display: "/srv/git/api".to_owned(),
            source_sealed: b"/srv/git/api".to_vec(),
            branches: None,
            fetch_interval: None,
        })
        .await
        .unwrap()
    else {
        panic!("not created");
    };
    one.record_fetch(repo.id, FetchResult::Fetched(main_at('a')))
        .await
        .unwrap();
    let monitor = two
        .create_monitor(NewMonitor {
            id: MonitorId::new(),
            description: "d".to_owned(),
            query: "type:commit fix".to_owned(),
            enabled: true,
            actions: vec![],
        })
        .await
        .unwrap();
    let record = SearchRecord {
        monitor_id: monitor.id,
        repository_id: repo.id,
        from: main_at('a'),
        to: main_at('b'),
        run: None,
        events: vec![],
    };
    let (first, second) =
        tokio::join!(one.record_search(record.clone()), two.record_search(record));
    let mut outcomes = [first.unwrap(), second.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, SearchRecorded::Stale));
    assert_eq!(
        outcomes,
        [
            SearchRecorded::Recorded { published: vec![] },
            SearchRecorded::Stale
        ]
    );
    one.close().await;
    two.close().await;
}
