//! The in-memory scheduler lease: owners and expiries in a map, for a single process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use crate::error::{Error, Result};
use crate::model::Lease;
use crate::storage::LeaseStorage;
use crate::sync::lock;

/// Leases with an owner and an expiry, as in the original.
#[derive(Default)]
pub struct MemoryLeaseStorage {
    leases: Mutex<HashMap<String, Lease>>,
}

#[async_trait]
impl LeaseStorage for MemoryLeaseStorage {
    async fn maybe_acquire_lease(
        &self,
        name: &str,
        owner_id: &str,
        duration: Duration,
    ) -> Result<Option<Lease>> {
        let now = Utc::now();
        let mut leases = lock(&self.leases);
        if let Some(current) = leases.get(name) {
            if current.owner_id != owner_id && current.acquired_until > now {
                return Ok(None);
            }
        }
        let duration = chrono::Duration::from_std(duration).map_err(Error::internal)?;
        let lease = Lease {
            name: name.to_owned(),
            owner_id: owner_id.to_owned(),
            acquired: now,
            acquired_until: now + duration,
        };
        leases.insert(name.to_owned(), lease.clone());
        Ok(Some(lease))
    }

    async fn release_lease(&self, name: &str, owner_id: &str) -> Result<()> {
        let mut leases = lock(&self.leases);
        if leases
            .get(name)
            .is_some_and(|lease| lease.owner_id == owner_id)
        {
            leases.remove(name);
        }
        Ok(())
    }
}
