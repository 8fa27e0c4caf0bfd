//! `POST /build`: the classic builder over the API, as `docker build` (with
//! `DOCKER_BUILDKIT=0`), docker-py's `images.build` and compose use it. The body is the
//! context as a tar (plain, gzip or zstd), streamed to a staging directory under the store
//! (never held in memory); the query carries Docker's options (`t`, `dockerfile`, `target`,
//! `buildargs`, `labels`, `nocache`, `pull`, `q`, `rm`, `forcerm`, `networkmode`, ...).
//! The answer is jsonmessage lines: `{"stream": "Step 1/5 : ..."}`, `{"aux": {"ID": ...}}`,
//! and `{"errorDetail": ..., "error": ...}` for a failure once the stream has started.

use std::collections::BTreeMap;
use std::io::Write;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::json;
use strata_build::context::Context;
use strata_build::BuildOptions;
use strata_engine::images::PullOptions;
use strata_sys::{ErrorKind, Kind};

use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::state::{AppState, Blocking};
use crate::stream::{blocking_body, blocking_reader, json_message};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

fn api_error(e: strata_build::Error) -> ApiError {
    let status = match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid | ErrorKind::Unsupported => StatusCode::BAD_REQUEST,
        ErrorKind::Corrupt | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

/// A JSON object of strings in a query parameter (`buildargs`, `labels`).
fn json_map(query: &Query, key: &str) -> ApiResult<BTreeMap<String, String>> {
    match query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(v) => {
            let map: BTreeMap<String, Option<String>> = serde_json::from_str(v).map_err(|e| {
                ApiError::bad_request(format!("{key}: not a JSON object of strings: {e}"))
            })?;
            Ok(map
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect())
        }
    }
}

/// The options strata refuses rather than ignores.
fn refuse_unsupported(query: &Query) -> ApiResult<()> {
    if query.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request("remote build contexts (a URL or git repository) are not supported: send the context as a tar"));
    }
    if query
        .get("cachefrom")
        .is_some_and(|c| !c.is_empty() && c != "[]" && c != "null")
    {
        return Err(ApiError::bad_request(
            "cachefrom is not supported: strata's build cache is the store's own",
        ));
    }
    if query.get("extrahosts").is_some_and(|h| !h.is_empty()) {
        return Err(ApiError::bad_request(
            "extrahosts (--add-host) is not supported by strata's build steps yet",
        ));
    }
    if query.flag("squash") {
        return Err(ApiError::bad_request("squash is not supported"));
    }
    for limit in [
        "memory",
        "memswap",
        "cpushares",
        "cpuperiod",
        "cpuquota",
        "shmsize",
    ] {
        if query.int(limit)?.is_some_and(|v| v != 0) {
            return Err(ApiError::bad_request(format!(
                "{limit} is not supported by strata's build steps yet"
            )));
        }
    }
    if query.get("cpusetcpus").is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::bad_request(
            "cpusetcpus is not supported by strata's build steps yet",
        ));
    }
    if query.get("outputs").is_some_and(|o| !o.is_empty()) || query.get("version") == Some("2") {
        return Err(ApiError::bad_request("BuildKit builds (version=2, outputs) are not supported: use the classic builder (DOCKER_BUILDKIT=0)"));
    }
    Ok(())
}

async fn build(
    State(state): State<AppState>,
    query: Query,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let _ = headers;
    let mut reader = blocking_reader(body);
    let prepared = (|| {
        refuse_unsupported(&query)?;
        let network = strata_build::network_mode(query.get("networkmode")).map_err(api_error)?;
        Ok::<_, ApiError>((
            query
                .all("t")
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>(),
            query
                .get("dockerfile")
                .filter(|d| !d.is_empty())
                .unwrap_or("Dockerfile")
                .to_string(),
            json_map(&query, "buildargs")?,
            json_map(&query, "labels")?,
            network,
        ))
    })();
    let (tags, dockerfile, build_args, labels, network) = match prepared {
        Ok(p) => p,
        Err(e) => {
            // Read the context first: a client still sending it would see a broken pipe.
            let _ = tokio::task::spawn_blocking(move || {
                std::io::copy(&mut reader, &mut std::io::sink())
            })
            .await;
            return Err(e);
        }
    };
    let options = BuildOptions {
        dockerfile: String::new(),
        tags,
        target: query
            .get("target")
            .filter(|t| !t.is_empty())
            .map(String::from),
        build_args,
        labels,
        no_cache: query.flag("nocache"),
        pull: query.flag("pull"),
        remove: query.get("rm").is_none() || query.flag("rm"),
        force_remove: query.flag("forcerm"),
        network,
        monitor: state.monitor_binary.clone(),
        pull_options: PullOptions::default(),
    };
    let quiet = query.flag("q");
    // The context is staged before the answer starts: a bad tar is a plain 400.
    let daemon = state.daemon.clone();
    let (context, options) = daemon
        .run(move |e| {
            let staged = Context::from_tar(e.images().store_root(), &mut reader);
            // Whatever happened, the client's upload ends before the answer.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            let context = staged.map_err(api_error)?;
            let text = context
                .read_file(&dockerfile)
                .map_err(api_error)?
                .ok_or_else(|| ApiError::bad_request(format!("Cannot locate specified Dockerfile: {dockerfile} (it is not in the build context)")))?;
            Ok((context, BuildOptions { dockerfile: text, ..options }))
        })
        .await?;
    let daemon = state.daemon.clone();
    blocking_body("application/json", move |out| {
        let mut failed = None;
        let mut started = false;
        let mut send = |line: bytes::Bytes, out: &mut dyn Write| {
            started = true;
            if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
                failed.get_or_insert(e);
            }
        };
        let result = daemon.with_engine(|e| {
            strata_build::build(e, &context, &options, &mut |text| {
                if !quiet {
                    send(json_message(json!({ "stream": text })), out);
                }
            })
        });
        drop(context);
        match result {
            Ok(built) => {
                let _ = out.write_all(&json_message(json!({ "aux": { "ID": built.id } })));
                if quiet {
                    let _ = out.write_all(&json_message(
                        json!({ "stream": format!("{}\n", built.id) }),
                    ));
                }
                Ok(())
            }
            // Nothing sent yet (a parse error): an ordinary error answer, as dockerd's.
            Err(e) if !started => Err(api_error(e)),
            Err(e) => {
                let message = e.to_string();
                let _ = out.write_all(&json_message(json!({
                    "errorDetail": { "message": message },
                    "error": message,
                })));
                Ok(())
            }
        }
    })
    .await
}

/// `POST /build/prune`: the build cache, and the intermediate images only it kept.
async fn prune(State(state): State<AppState>) -> ApiResult<Response> {
    let report = state.daemon.run(|e| Ok(e.images().cache_prune()?)).await?;
    let body = json!({
        "CachesDeleted": report.images,
        "SpaceReclaimed": report.reclaimed,
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid response"))
}
