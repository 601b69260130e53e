//! Background work of a running server: the referral timers (R4.5) and the outbound channel
//! for notifications. Each pass is safe to run from several servers at once: the store makes
//! every change conditional on the state it judged.

use std::time::Duration;

use medgrid_store::referral::Notification;
use medgrid_store::{local_now, Store};

use crate::AppState;

/// What an outbound channel did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to the carrier, which accepted it.
    Sent,
    /// Written to the log only: no carrier is configured. Never reported as sent.
    Logged,
    Failed(String),
}

impl Delivery {
    pub fn as_str(&self) -> &str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Logged => "logged",
            Delivery::Failed(_) => "failed",
        }
    }
}

/// An outbound channel (SMS gateway, WeChat template messages …). Deployments plug in an
/// adapter for their carrier; medgrid ships only [`LoggingChannel`].
pub trait Outbound: Send + Sync {
    /// The channel's name as stored with each notification.
    fn name(&self) -> &'static str;
    fn deliver(&self, n: &Notification) -> Delivery;
}

/// Writes each notification to the log. It does not pretend to have sent anything.
pub struct LoggingChannel;

impl Outbound for LoggingChannel {
    fn name(&self) -> &'static str {
        "log"
    }

    fn deliver(&self, n: &Notification) -> Delivery {
        tracing::info!(
            notification = n.id,
            referral = ?n.referral_id,
            user = ?n.user_id,
            unit = ?n.unit_id,
            audience = %n.audience,
            text = %n.text_zh,
            "notification (logging channel, not sent)"
        );
        Delivery::Logged
    }
}

/// Hands pending notifications to `channel`, recording what it did. Returns how many.
pub async fn dispatch(
    store: &Store,
    channel: &dyn Outbound,
) -> Result<usize, medgrid_store::StoreError> {
    let pending = store.pending_notifications(200).await?;
    for n in &pending {
        let d = channel.deliver(n);
        if let Delivery::Failed(why) = &d {
            tracing::warn!(notification = n.id, %why, "notification not delivered");
        }
        store
            .mark_delivery(n.id, channel.name(), d.as_str())
            .await?;
    }
    Ok(pending.len())
}

/// How often the indicator cube takes in new facts: the cockpit is at most this far behind.
pub const CUBE_REFRESH: Duration = Duration::from_secs(20);

/// Keeps the indicator cube up to date: new facts every `CUBE_REFRESH`, and a rebuild from
/// every fact (which also takes in any fact a refresh could not see) whenever the stored
/// cube was last rebuilt before today. The day is read from the database, so a server
/// restarted daily still rebuilds and a failed rebuild is tried again at the next tick.
pub fn spawn_cube(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CUBE_REFRESH);
        // A long rebuild is followed by one refresh, not by the ticks it missed.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let actor = medgrid_store::Actor::system("indicator");
        loop {
            tick.tick().await;
            let done = match state.store.cube_state().await {
                Ok(Some(s)) if rebuilt_day(s.rebuilt_at) < local_now().date() => {
                    state.store.rebuild_cube(&actor).await
                }
                Ok(_) => state.store.refresh_cube(&actor).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(r) if r.units > 0 => tracing::info!(?r, "indicator cube"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "indicator cube refresh failed"),
            }
        }
    })
}

/// The local day (UTC+8, as `local_now`) of a rebuild.
fn rebuilt_day(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    (at + chrono::Duration::hours(8)).date_naive()
}

/// Runs the timers and the outbound channel until the process ends.
pub fn spawn(state: AppState, channel: Box<dyn Outbound>) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(state.config.referral.timer_interval_seconds.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let actor = medgrid_store::Actor::system("timetable");
        let mut opened_on = None;
        loop {
            tick.tick().await;
            // Once a day (and at start): the release window moves on by a day, so the
            // timetables open the day that just came into it.
            let today = local_now().date();
            if opened_on != Some(today) {
                match crate::capacity::open_release_window(&state, &actor).await {
                    Ok(n) => {
                        opened_on = Some(today);
                        if n > 0 {
                            tracing::info!(sessions = n, "timetables opened");
                        }
                    }
                    Err(e) => tracing::error!(error = ?e, "opening timetables failed"),
                }
            }
            match state
                .store
                .escalate_overdue(&state.timers, local_now())
                .await
            {
                Ok(done) if done != Default::default() => tracing::info!(?done, "referral timers"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "referral timers failed"),
            }
            if let Err(e) = dispatch(&state.store, channel.as_ref()).await {
                tracing::error!(error = %e, "notification dispatch failed");
            }
        }
    })
}
