//! `GET /events`: container, image and volume events in Docker's shape (`Type`, `Action`,
//! `Actor`, `time`, `timeNano`, and the legacy `status`/`id`/`from`), with `since`,
//! `until` and the `type`, `event`, `container`, `image` and `volume` filters.
//!
//! Events are seen, not announced: while anyone listens, a watcher compares the store
//! with what it saw 100 ms earlier and reports the differences. The store is shared with
//! the daemonless CLI, so what `strata run` does shows here too, and no handler has to
//! remember to emit anything. The price: what begins and ends between two looks (a
//! container created and removed within 100 ms) is not seen, and a new image is reported as
//! `import` whether it was imported, loaded or committed. Events seen are kept (the last
//! 1024) for `since`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use strata_engine::{Engine, State as RunState};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::params::{Filters, Query};
use crate::state::{AppState, Blocking};

/// The routes, with the hub their listeners share (one per router, so per daemon).
pub fn routes() -> Router<AppState> {
    let hub = Arc::new(Hub::new());
    Router::new().route(
        "/events",
        get(move |state, query| events(state, hub.clone(), query)),
    )
}

const POLL: Duration = Duration::from_millis(100);
const KEPT: usize = 1024;

/// One event and the fields filters look at.
#[derive(Clone, Debug)]
struct Event {
    kind: &'static str,
    action: &'static str,
    id: String,
    attributes: BTreeMap<String, String>,
    time_nano: i64,
}

impl Event {
    fn to_json(&self) -> Value {
        let mut value = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": { "ID": self.id, "Attributes": self.attributes },
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        if self.kind != "volume" {
            value["status"] = json!(self.action);
            value["id"] = json!(self.id);
        }
        if let Some(image) = self
            .attributes
            .get("image")
            .filter(|_| self.kind == "container")
        {
            value["from"] = json!(image);
        }
        value
    }

    fn accepted_by(&self, filters: &Filters) -> bool {
        let named = |key: &str| {
            filters.accepts(key, |v| {
                self.kind != key
                    || self.id.starts_with(v)
                    || self.attributes.get("name").is_some_and(|n| n == v)
            })
        };
        filters.accepts("type", |t| t == self.kind)
            && filters.accepts("event", |e| e == self.action)
            && named("container")
            && named("image")
            && named("volume")
    }
}

/// A container as the watcher saw it: name, image, state, started, finished, exit code.
type ContainerSeen = (
    String,
    String,
    RunState,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// What the watcher saw last.
#[derive(Default)]
struct Snapshot {
    /// id → (name, image, state, started_at, finished_at, exit code).
    containers: BTreeMap<String, ContainerSeen>,
    /// id → tags.
    images: BTreeMap<String, BTreeSet<String>>,
    volumes: BTreeSet<String>,
}

fn snapshot(engine: &Engine) -> ApiResult<Snapshot> {
    let mut s = Snapshot::default();
    for c in engine.containers(true)? {
        let image = engine
            .container_config(&c)
            .map(|cfg| cfg.image)
            .unwrap_or_default();
        s.containers.insert(
            c.id.clone(),
            (
                c.name,
                image,
                c.state,
                c.started_at,
                c.finished_at,
                c.exit_code,
            ),
        );
    }
    for image in engine.images()? {
        let tags = image.tags.iter().map(|t| t.to_string()).collect();
        s.images.insert(image.id, tags);
    }
    s.volumes = engine.volumes()?.into_iter().map(|v| v.name).collect();
    Ok(s)
}

/// The events that lead from `old` to `new`. A container that was running and is gone
/// died first (removed within one look of its exit): `exit_of` knows its code if this
/// daemon's monitor reaped it.
fn differences(
    old: &Snapshot,
    new: &Snapshot,
    now: i64,
    exit_of: &dyn Fn(&str) -> Option<i64>,
) -> Vec<Event> {
    let mut out = Vec::new();
    let mut push = |kind, action, id: &str, attributes: BTreeMap<String, String>| {
        out.push(Event {
            kind,
            action,
            id: id.to_string(),
            attributes,
            time_nano: now,
        })
    };
    for (id, (name, image, state, started, finished, code)) in &new.containers {
        let attributes: BTreeMap<String, String> = [
            ("name".into(), name.clone()),
            ("image".into(), image.clone()),
        ]
        .into();
        let before = old.containers.get(id);
        if before.is_none() {
            push("container", "create", id, attributes.clone());
        }
        if started.is_some() && before.is_none_or(|b| b.3 != *started) {
            push("container", "start", id, attributes.clone());
        }
        if finished.is_some()
            && *state != RunState::Running
            && before.is_none_or(|b| b.4 != *finished)
        {
            let mut attributes = attributes.clone();
            attributes.insert("exitCode".into(), code.unwrap_or(0).to_string());
            push("container", "die", id, attributes);
        }
    }
    for (id, (name, image, state, ..)) in &old.containers {
        if !new.containers.contains_key(id) {
            let attributes: BTreeMap<String, String> = [
                ("name".into(), name.clone()),
                ("image".into(), image.clone()),
            ]
            .into();
            if *state == RunState::Running {
                let mut died = attributes.clone();
                let code = exit_of(id).unwrap_or(0);
                died.insert("exitCode".into(), code.to_string());
                push("container", "die", id, died);
            }
            push("container", "destroy", id, attributes);
        }
    }
    for (id, tags) in &new.images {
        let before = old.images.get(id);
        if before.is_none() {
            push("image", "import", id, BTreeMap::new());
        }
        for tag in tags
            .iter()
            .filter(|t| before.is_none_or(|b| !b.contains(*t)))
        {
            push("image", "tag", id, [("name".into(), tag.clone())].into());
        }
    }
    for (id, tags) in &old.images {
        let now_tags = new.images.get(id);
        for tag in tags
            .iter()
            .filter(|t| now_tags.is_none_or(|n| !n.contains(*t)))
        {
            push("image", "untag", id, [("name".into(), tag.clone())].into());
        }
        if now_tags.is_none() {
            push("image", "delete", id, BTreeMap::new());
        }
    }
    for name in new.volumes.difference(&old.volumes) {
        push(
            "volume",
            "create",
            name,
            [("driver".into(), "local".into())].into(),
        );
    }
    for name in old.volumes.difference(&new.volumes) {
        push(
            "volume",
            "destroy",
            name,
            [("driver".into(), "local".into())].into(),
        );
    }
    out
}

/// The watcher's channel and the events it kept; the watcher runs while anyone listens.
struct Hub {
    sender: broadcast::Sender<Event>,
    kept: Mutex<VecDeque<Event>>,
    watching: Mutex<bool>,
}

impl Hub {
    fn new() -> Hub {
        Hub {
            sender: broadcast::channel(256).0,
            kept: Mutex::new(VecDeque::new()),
            watching: Mutex::new(false),
        }
    }

    fn subscribe(self: &Arc<Self>, state: &AppState) -> broadcast::Receiver<Event> {
        let receiver = self.sender.subscribe();
        let mut watching = self.watching.lock().unwrap_or_else(|p| p.into_inner());
        if !*watching {
            *watching = true;
            let (hub, state) = (self.clone(), state.clone());
            tokio::spawn(async move { hub.watch(state).await });
        }
        receiver
    }

    async fn watch(self: Arc<Self>, state: AppState) {
        let daemon = state.daemon.clone();
        let exit_of = |id: &str| state.daemon.monitors.exit_code(id);
        let mut last = daemon.run(snapshot).await.unwrap_or_default();
        loop {
            tokio::time::sleep(POLL).await;
            {
                let mut watching = self.watching.lock().unwrap_or_else(|p| p.into_inner());
                if self.sender.receiver_count() == 0 {
                    *watching = false;
                    return;
                }
            }
            let Ok(now) = daemon.run(snapshot).await else {
                continue;
            };
            let time = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            for event in differences(&last, &now, time, &exit_of) {
                let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() == KEPT {
                    kept.pop_front();
                }
                kept.push_back(event.clone());
                drop(kept);
                let _ = self.sender.send(event);
            }
            last = now;
        }
    }
}

/// Unix seconds (fractions allowed), or an RFC 3339 time; as nanoseconds.
fn time_param(query: &Query, key: &str) -> ApiResult<Option<i64>> {
    let Some(text) = query.get(key).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(Some((seconds * 1e9) as i64));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.timestamp_nanos_opt().unwrap_or(0)))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "invalid {key} {text:?}: give Unix seconds or an RFC 3339 time"
            ))
        })
}

/// `GET /events?since=&until=&filters=`: JSON lines as events happen; ends at `until`.
async fn events(State(state): State<AppState>, hub: Arc<Hub>, query: Query) -> ApiResult<Response> {
    let filters = query.filters()?;
    filters.only(&["type", "event", "container", "image", "volume"])?;
    let since = time_param(&query, "since")?;
    let until = time_param(&query, "until")?;
    let mut receiver = hub.subscribe(&state);
    let past: Vec<Event> = match since {
        Some(since) => hub
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e.time_nano >= since && until.is_none_or(|u| e.time_nano <= u))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let line = |e: &Event| {
            let mut text = e.to_json().to_string();
            text.push('\n');
            Ok(Bytes::from(text))
        };
        for e in past.iter().filter(|e| e.accepted_by(&filters)) {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let deadline = until.map(|u| Duration::from_nanos(u.saturating_sub(now).max(0) as u64));
        let end = async {
            match deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(end);
        loop {
            tokio::select! {
                _ = &mut end => return,
                _ = tx.closed() => return,
                next = receiver.recv() => match next {
                    Ok(e) if e.accepted_by(&filters) => {
                        if tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_become_dockers_events() {
        let mut old = Snapshot::default();
        old.images
            .insert("sha256:a".into(), ["bb:1".to_string()].into());
        old.volumes.insert("gone".into());
        let mut new = Snapshot::default();
        new.containers.insert(
            "c1".into(),
            (
                "web".into(),
                "bb".into(),
                RunState::Exited,
                Some(1),
                Some(2),
                Some(3),
            ),
        );
        new.images
            .insert("sha256:a".into(), ["bb:2".to_string()].into());
        new.volumes.insert("made".into());
        let events = differences(&old, &new, 42, &|_| None);
        let actions: Vec<(&str, &str)> = events.iter().map(|e| (e.kind, e.action)).collect();
        assert_eq!(
            actions,
            [
                ("container", "create"),
                ("container", "start"),
                ("container", "die"),
                ("image", "tag"),
                ("image", "untag"),
                ("volume", "create"),
                ("volume", "destroy"),
            ]
        );
        let die = events[2].to_json();
        assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(die["from"], "bb");
        assert_eq!(die["timeNano"], 42);
        let filters = Filters::parse(r#"{"type":["container"],"event":["die"]}"#).unwrap();
        assert_eq!(events.iter().filter(|e| e.accepted_by(&filters)).count(), 1);
        let by_name = Filters::parse(r#"{"container":["web"]}"#).unwrap();
        assert!(events[0].accepted_by(&by_name));
        let gone = differences(&new_running(), &Snapshot::default(), 7, &|_| Some(137));
        let actions: Vec<&str> = gone.iter().map(|e| e.action).collect();
        assert_eq!(actions, ["die", "destroy"]);
        assert_eq!(gone[0].attributes["exitCode"], "137");
    }

    fn new_running() -> Snapshot {
        let mut s = Snapshot::default();
        s.containers.insert(
            "c2".into(),
            (
                "db".into(),
                "bb".into(),
                RunState::Running,
                Some(1),
                None,
                None,
            ),
        );
        s
    }
}
