//! The delivery log: a webhook's deliveries, one delivery with its event and
//! attempts, and redelivery.

use std::str::FromStr;

use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{DeliveryDetail, DeliveryPage, DeliveryQuery, DeliveryRecord, DeliveryStatus};

use crate::tokens::{Permission, Principal};
use crate::{App, AppError, ErrorKind};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 250;

/// Which of a webhook's deliveries to list, as the caller wrote it; every
/// field is optional.
#[derive(Debug, Default)]
pub struct DeliveryFilter {
    /// `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// Created at or after this RFC 3339 instant.
    pub since: Option<String>,
    /// Created before this RFC 3339 instant.
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_PAGE_SIZE`]; [`DEFAULT_PAGE_SIZE`] by default.
    pub limit: Option<String>,
}

impl DeliveryFilter {
    fn into_query(self, webhook_id: WebhookId) -> Result<DeliveryQuery, AppError> {
        Ok(DeliveryQuery {
            webhook_id,
            status: self.status.as_deref().map(parse_status).transpose()?,
            since: self
                .since
                .as_deref()
                .map(|s| parse_time("since", s))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|s| parse_time("until", s))
                .transpose()?,
            cursor: self
                .cursor
                .as_deref()
                .map(parse_cursor::<DeliveryId>)
                .transpose()?,
            limit: self
                .limit
                .as_deref()
                .map(parse_limit)
                .transpose()?
                .unwrap_or(DEFAULT_PAGE_SIZE),
        })
    }
}

fn parse_status(text: &str) -> Result<DeliveryStatus, AppError> {
    DeliveryStatus::parse(text).ok_or_else(|| {
        AppError::invalid_query(
            Some("status"),
            format!("status must be pending, succeeded or failed; got {text:?}"),
        )
    })
}

fn parse_time(name: &str, text: &str) -> Result<Timestamp, AppError> {
    Timestamp::parse_rfc3339(text)
        .map_err(|e| AppError::invalid_query(Some(name), format!("{name}: {e}")))
}

/// A page's `cursor`: the `next_cursor` of the previous page, an id.
pub(crate) fn parse_cursor<Id: FromStr>(text: &str) -> Result<Id, AppError> {
    text.parse().map_err(|_| {
        AppError::invalid_query(
            Some("cursor"),
            format!("cursor must be the next_cursor of a previous page; got {text:?}"),
        )
    })
}

/// A page's `limit`: 1 to [`MAX_PAGE_SIZE`].
pub(crate) fn parse_limit(text: &str) -> Result<u32, AppError> {
    match text.parse::<u32>() {
        Ok(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => Ok(limit),
        _ => Err(AppError::invalid_query(
            Some("limit"),
            format!("limit must be a whole number from 1 to {MAX_PAGE_SIZE}; got {text:?}"),
        )),
    }
}

impl App {
    /// A page of the webhook's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        by: &Principal,
        webhook_id: WebhookId,
        filter: DeliveryFilter,
    ) -> Result<DeliveryPage, AppError> {
        by.require(Permission::ReadWebhooks)?;
        let query = filter.into_query(webhook_id)?;
        self.visible_webhook(by, webhook_id).await?;
        Ok(self.store().list_deliveries(query).await?)
    }

    /// The delivery, its event and every attempt.
    pub async fn delivery(
        &self,
        by: &Principal,
        id: DeliveryId,
    ) -> Result<DeliveryDetail, AppError> {
        by.require(Permission::ReadWebhooks)?;
        self.visible_delivery(by, id).await
    }

    /// The delivery, if the principal may see its webhook; otherwise not found.
    async fn visible_delivery(
        &self,
        by: &Principal,
        id: DeliveryId,
    ) -> Result<DeliveryDetail, AppError> {
        let detail = self
            .store()
            .get_delivery(id)
            .await?
            .ok_or_else(|| AppError::not_found("delivery", id))?;
        if by.project().is_none() {
            return Ok(detail);
        }
        match self.visible_webhook(by, detail.delivery.webhook_id).await {
            Ok(_) => Ok(detail),
            Err(error) if error.kind == ErrorKind::NotFound => {
                Err(AppError::not_found("delivery", id))
            }
            Err(error) => Err(error),
        }
    }

    /// Queues the delivery for another attempt now, with a fresh retry
    /// schedule (left as it is while an attempt is in flight).
    pub async fn redeliver(
        &self,
        by: &Principal,
        id: DeliveryId,
    ) -> Result<DeliveryRecord, AppError> {
        by.require(Permission::ManageWebhooks)?;
        let detail = self.visible_delivery(by, id).await?;
        let webhook_id = detail.delivery.webhook_id;
        let webhook_enabled = self
            .store()
            .get_webhook(webhook_id)
            .await?
            .is_some_and(|w| w.enabled);
        if !webhook_enabled {
            return Err(AppError::webhook_disabled(webhook_id));
        }
        let record = self
            .store()
            .redeliver(id)
            .await?
            .ok_or_else(|| AppError::not_found("delivery", id))?;
        self.engine().wake();
        Ok(record)
    }
}
