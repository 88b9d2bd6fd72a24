//! `cliq-sync status [--json] [--check]`: the mirror's state, read-only.

use std::path::Path;

use super::{settings_logged, Failure};
use crate::clock::Clock;
use crate::mirror::Store;

pub(super) async fn command(config: Option<&Path>, json: bool, check: bool) -> Result<(), Failure> {
    let settings = settings_logged(config)?;
    let clock = Clock::system();
    let path = &settings.mirror.path;
    // Read-only (a read-only mount, beside the daemon); a mirror that does
    // not exist yet is created as before, so status on a fresh install works.
    let store = if path.exists() {
        let (store, pending) = Store::open_read_only(path, &clock)
            .await
            .map_err(Failure::runtime)?;
        if let Some(first) = pending.first() {
            eprintln!(
                "note: the mirror predates this cliq-sync ({} migration(s) from {first} not \
                 applied), shown as it is; run any write command (e.g. cliq-sync sync) to migrate it.",
                pending.len()
            );
        }
        store
    } else {
        Store::open(path, &clock).await.map_err(Failure::runtime)?
    };
    let report = crate::status::collect(&store, &settings, clock.now())
        .await
        .map_err(Failure::runtime)?;
    if check {
        let health = crate::status::check(&store, &settings, &report).await;
        store.close().await;
        return crate::exit::health(&health.map_err(Failure::runtime)?, json);
    }
    if json {
        println!(
            "{}",
            crate::json::document(&report).map_err(Failure::runtime)?
        );
    } else {
        print!("{}", report.to_text());
    }
    store.close().await;
    Ok(())
}
