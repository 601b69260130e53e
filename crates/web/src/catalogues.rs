//! The group's referral catalogues (R4.1): read by everybody of the group who refers, edited
//! by the group's medical-affairs side, each edit a new version.

use serde::{Deserialize, Serialize};

use medgrid_domain::access::{Action, Id};
use medgrid_domain::referral::CatalogueKind;
use medgrid_store::catalogue::Catalogue;

use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

/// A new version of a catalogue: its whole text, one entry a line (`I10-I15 高血压`, or
/// `- 危急重症` for a category without codes).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CatalogueInput {
    /// The version the edit started from; a later publication in between refuses the edit.
    pub base_version: i64,
    pub text: String,
    #[serde(default)]
    pub note: String,
}

/// One version listed without its entries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub version: i64,
    pub published_at: chrono::DateTime<chrono::Utc>,
    pub published_by: Option<String>,
    pub note: Option<String>,
    pub entries: i64,
}

/// The current version of each of the group's catalogues.
pub async fn current(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
) -> Result<Vec<Catalogue>, AppError> {
    let group = state.store.group(group_id).await?;
    caller.allow(Action::RegistryRead, &group.path()).await?;
    let mut out = Vec::with_capacity(CatalogueKind::ALL.len());
    for kind in CatalogueKind::ALL {
        out.push(state.store.catalogue(group_id, *kind).await?);
    }
    Ok(out)
}

pub async fn versions(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    kind: CatalogueKind,
) -> Result<Vec<VersionInfo>, AppError> {
    let group = state.store.group(group_id).await?;
    caller.allow(Action::RegistryRead, &group.path()).await?;
    Ok(state
        .store
        .catalogue_versions(group_id, kind)
        .await?
        .into_iter()
        .map(
            |(version, published_at, published_by, note, entries)| VersionInfo {
                version,
                published_at,
                published_by,
                note,
                entries,
            },
        )
        .collect())
}

/// Publishes the next version; every bad line is reported and nothing changes.
pub async fn publish(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    kind: CatalogueKind,
    input: &CatalogueInput,
) -> Result<Catalogue, AppError> {
    let group = state.store.group(group_id).await?;
    caller.allow(Action::CatalogueWrite, &group.path()).await?;
    Ok(state
        .store
        .publish_catalogue(
            &caller.actor,
            group.path(),
            kind,
            input.base_version,
            &input.text,
            &input.note,
        )
        .await?)
}
