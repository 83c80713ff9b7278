//! Where each webhook's delivery progress is kept: beside the SQLite
//! database (`<db>.webhooks`, so that a delivery never waits for the
//! engine's write lock), or in the PostgreSQL database.

use crate::domain::config::Config;
use crate::store::postgres::PgStore;
use crate::store::{Deliveries, Delivery, Result};

pub trait DeliveryProgress {
    fn load(&self, webhook: &str) -> Result<Delivery>;
    fn save(&self, webhook: &str, delivery: &Delivery) -> Result<()>;
}

pub fn open_progress(config: &Config) -> anyhow::Result<Box<dyn DeliveryProgress>> {
    Ok(match &config.store_url {
        Some(url) => Box::new(PgStore::open(url.secret())?),
        None => Box::new(Deliveries::open(&config.store_path, config.synchronous)?),
    })
}

impl DeliveryProgress for Deliveries {
    fn load(&self, webhook: &str) -> Result<Delivery> {
        Deliveries::load(self, webhook)
    }

    fn save(&self, webhook: &str, delivery: &Delivery) -> Result<()> {
        Deliveries::save(self, webhook, delivery)
    }
}

impl DeliveryProgress for PgStore {
    fn load(&self, webhook: &str) -> Result<Delivery> {
        self.delivery(webhook)
    }

    fn save(&self, webhook: &str, delivery: &Delivery) -> Result<()> {
        self.save_delivery(webhook, delivery)
    }
}
