//! The in-memory scrapers: a map by id behind one mutex, with ids never reused.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::model::{Scraper, ScraperId};
use crate::schedule::{no_ids_left, MAX_SCRAPER_ID};
use crate::storage::text::{storable, storable_option, storable_scraper};
use crate::storage::ScrapersStorage;
use crate::sync::lock;

/// The in-memory scrapers; a read-only one refuses every change to the list.
pub struct MemoryScrapersStorage {
    read_only: bool,
    scrapers: Mutex<ScrapersState>,
    changes: watch::Sender<u64>,
}

#[derive(Default)]
struct ScrapersState {
    by_id: BTreeMap<ScraperId, Scraper>,
    /// Ids are never reused, even after a delete, so an old job never points at a new scraper.
    next_id: ScraperId,
}

impl MemoryScrapersStorage {
    /// A storage holding `scrapers` (ids `<= 0` get assigned).
    pub fn new(scrapers: Vec<Scraper>, read_only: bool) -> Self {
        let mut state = ScrapersState {
            by_id: BTreeMap::new(),
            next_id: 1,
        };
        for scraper in scrapers {
            // Only a list that gives out the last id (2^53 - 1) before one without an id can
            // be refused here; say so rather than fail the whole start.
            let name = scraper.name.clone();
            if let Err(error) = state.insert(scraper) {
                tracing::error!(name, error = %error.report(), "scraper not loaded");
            }
        }
        MemoryScrapersStorage {
            read_only,
            scrapers: Mutex::new(state),
            changes: watch::channel(0).0,
        }
    }

    fn changed(&self) {
        self.changes.send_modify(|version| *version += 1);
    }
}

impl ScrapersState {
    fn insert(&mut self, scraper: Scraper) -> Result<Scraper> {
        let mut scraper = storable_scraper(&scraper).into_owned();
        if scraper.id <= 0 {
            if self.next_id > MAX_SCRAPER_ID {
                return Err(no_ids_left());
            }
            scraper.id = self.next_id;
        }
        self.next_id = self.next_id.max(scraper.id.saturating_add(1));
        self.by_id.insert(scraper.id, scraper.clone());
        Ok(scraper)
    }
}

#[async_trait]
impl ScrapersStorage for MemoryScrapersStorage {
    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn get_scrapers(&self) -> Result<Vec<Scraper>> {
        Ok(lock(&self.scrapers).by_id.values().cloned().collect())
    }

    async fn search_scrapers(
        &self,
        name_filter: Option<&str>,
        max_items: Option<i64>,
        last_id: Option<i64>,
    ) -> Result<Vec<Scraper>> {
        let limit = max_items
            .filter(|max| *max > 0)
            .map_or(usize::MAX, |max| max as usize);
        let state = lock(&self.scrapers);
        let after = last_id.unwrap_or(i64::MIN).saturating_add(1);
        Ok(state
            .by_id
            .range(after..)
            .map(|(_, scraper)| scraper)
            // Names are stored without NUL (see `text`): a filter is matched the same way.
            .filter(|scraper| {
                name_filter.is_none_or(|filter| scraper.name.contains(&*storable(filter)))
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn maybe_get_scraper(&self, id: ScraperId) -> Result<Option<Scraper>> {
        Ok(lock(&self.scrapers).by_id.get(&id).cloned())
    }

    async fn create_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        let created = lock(&self.scrapers).insert(scraper)?;
        self.changed();
        Ok(created)
    }

    async fn update_scraper(&self, scraper: Scraper) -> Result<Scraper> {
        self.writable()?;
        let updated = {
            let mut state = lock(&self.scrapers);
            let stored = state
                .by_id
                .get_mut(&scraper.id)
                .ok_or(Error::ScraperNotFound(scraper.id))?;
            *stored = storable_scraper(&scraper).into_owned();
            stored.clone()
        };
        self.changed();
        Ok(updated)
    }

    async fn delete_scraper(&self, id: ScraperId) -> Result<Scraper> {
        self.writable()?;
        let deleted = lock(&self.scrapers)
            .by_id
            .remove(&id)
            .ok_or(Error::ScraperNotFound(id))?;
        self.changed();
        Ok(deleted)
    }

    async fn update_scraper_state(&self, id: ScraperId, state: Option<String>) -> Result<Scraper> {
        let mut scrapers = lock(&self.scrapers);
        let stored = scrapers
            .by_id
            .get_mut(&id)
            .ok_or(Error::ScraperNotFound(id))?;
        stored.state = storable_option(state);
        Ok(stored.clone())
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
