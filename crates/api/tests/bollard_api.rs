//! The API through a real client (bollard) and raw HTTP, against a real `strata daemon`:
//! version negotiation, Docker's error shapes, images, and containers run through runc.

mod common;

use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ImportImageOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder, WaitContainerOptionsBuilder,
};
use common::*;
use futures_util::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn versions_are_negotiated_and_errors_have_dockers_shape() {
    let Some(d) = Daemon::start() else { return };
    let ping = d.raw("GET", "/_ping", b"");
    assert_eq!((ping.status, ping.body.as_slice()), (200, &b"OK"[..]));
    assert_eq!(ping.header("api-version"), Some("1.47"));
    assert_eq!(ping.header("ostype"), Some("linux"));
    assert!(ping.header("docker-experimental").is_some());
    assert!(ping
        .header("cache-control")
        .is_some_and(|v| v.contains("no-cache")));
    let head = d.raw("HEAD", "/_ping", b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("api-version"), Some("1.47"));

    let version = d.raw("GET", "/v1.24/version", b"");
    assert_eq!(version.status, 200);
    assert_eq!(version.json()["ApiVersion"], "1.47");
    assert_eq!(version.json()["MinAPIVersion"], "1.24");
    let too_new = d.raw("GET", "/v1.99/version", b"");
    assert_eq!(too_new.status, 400);
    assert_eq!(
        too_new.message(),
        "client version 1.99 is too new. Maximum supported API version is 1.47"
    );
    let too_old = d.raw("GET", "/v1.12/info", b"");
    assert_eq!(too_old.status, 400);
    assert!(too_old
        .message()
        .contains("is too old. Minimum supported API version is 1.24"));

    let unknown = d.raw("GET", "/v1.47/nothing/here", b"");
    assert_eq!(
        (unknown.status, unknown.message().as_str()),
        (404, "page not found")
    );
    for (path, body) in [
        ("/containers/create", &b"{not json"[..]),
        ("/containers/create", br#"{"Image": 5}"#),
        ("/containers/create", b""),
        ("/containers/create", br#"{"Cmd":["true"]}"#),
    ] {
        let r = d.raw("POST", path, body);
        assert_eq!(r.status, 400, "{path} {:?}", String::from_utf8_lossy(body));
        assert!(!r.message().is_empty());
    }
    let huge = vec![b' '; 3 << 20];
    let too_big = d.raw("POST", "/containers/create", &huge);
    assert_eq!(too_big.status, 413);
    assert!(
        too_big.message().contains("at most"),
        "{}",
        too_big.message()
    );
    let bad_create = d.raw("POST", "/containers/create", b"{not json");
    assert!(
        bad_create.message().contains("invalid JSON"),
        "{}",
        bad_create.message()
    );
    let no_image = d.raw(
        "POST",
        "/containers/create",
        br#"{"Image":"nosuch","Cmd":["true"]}"#,
    );
    assert_eq!(no_image.status, 404, "{}", no_image.message());
    for (method, path) in [
        ("GET", "/containers/nosuch/json"),
        ("POST", "/containers/nosuch/start"),
        ("DELETE", "/containers/nosuch"),
        ("GET", "/images/nosuch/json"),
        ("DELETE", "/images/nosuch:1"),
        ("GET", "/images/nosuch/get"),
    ] {
        let r = d.raw(method, path, b"");
        assert_eq!(r.status, 404, "{method} {path}: {}", r.message());
    }
    let bad_filter = d.raw("GET", "/containers/json?filters=%7Bnot", b"");
    assert_eq!(bad_filter.status, 400);
    // Still serving after all that.
    assert_eq!(d.raw("GET", "/_ping", b"").status, 200);

    runtime().block_on(async {
        let docker = d.docker();
        assert_eq!(docker.ping().await.unwrap(), "OK");
        let v = docker.version().await.unwrap();
        assert_eq!(v.api_version.as_deref(), Some("1.47"));
        let info = docker.info().await.unwrap();
        assert_eq!(info.driver.as_deref(), Some(d.driver));
        assert_eq!(info.images, Some(0));
        if d.driver == "overlay2" {
            let status = info.driver_status.unwrap();
            let keys: Vec<&str> = status.iter().map(|kv| kv[0].as_str()).collect();
            for key in [
                "Backing Filesystem",
                "Supports d_type",
                "Native Overlay Diff",
                "userxattr",
            ] {
                assert!(keys.contains(&key), "{key} missing from {keys:?}");
            }
        }
    });
}

#[test]
fn images_import_tag_save_load_and_remove() {
    let Some(d) = Daemon::start() else { return };
    let id = import_busybox(&d, "bb:1");
    assert!(id.starts_with("sha256:"), "{id}");
    runtime().block_on(async {
        let docker = d.docker();
        let list = docker
            .list_images(Some(ListImagesOptionsBuilder::default().all(true).build()))
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, id);
        assert_eq!(list[0].repo_tags, ["bb:1"]);
        let inspect = docker.inspect_image("bb:1").await.unwrap();
        assert_eq!(inspect.id.as_deref(), Some(id.as_str()));
        assert_eq!(
            inspect.config.unwrap().cmd,
            Some(vec!["sh".to_string()]),
            "the import's changes apply"
        );

        docker
            .tag_image(
                "bb:1",
                Some(
                    TagImageOptionsBuilder::default()
                        .repo("other/bb")
                        .tag("2")
                        .build(),
                ),
            )
            .await
            .unwrap();
        let filtered = d.raw(
            "GET",
            "/images/json?filters=%7B%22reference%22%3A%5B%22other%2F*%22%5D%7D",
            b"",
        );
        assert_eq!(
            filtered.json()[0]["RepoTags"],
            serde_json::json!(["bb:1", "other/bb:2"])
        );
        let none = d.raw(
            "GET",
            "/images/json?filters=%7B%22reference%22%3A%5B%22zzz%22%5D%7D",
            b"",
        );
        assert_eq!(none.json(), serde_json::json!([]));
        let history = docker.image_history("other/bb:2").await.unwrap();
        assert_eq!(history[0].id, id);
        let untagged = docker
            .remove_image(
                "other/bb:2",
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .unwrap();
        assert_eq!(untagged.len(), 1);
        assert_eq!(untagged[0].untagged.as_deref(), Some("other/bb:2"));

        // save | load keeps the image ID.
        let mut saved = Vec::new();
        let mut stream = docker.export_image("bb:1");
        while let Some(chunk) = stream.next().await {
            saved.extend_from_slice(&chunk.unwrap());
        }
        assert!(
            saved.len() > 1024,
            "a docker-archive, {} bytes",
            saved.len()
        );
        let removed = docker
            .remove_image(
                "bb:1",
                Some(RemoveImageOptionsBuilder::default().force(true).build()),
                None,
            )
            .await
            .unwrap();
        assert!(
            removed
                .iter()
                .any(|r| r.deleted.as_deref() == Some(id.as_str())),
            "{removed:?}"
        );
        assert!(docker.inspect_image("bb:1").await.is_err());
        let mut loaded = docker.import_image(
            ImportImageOptionsBuilder::default().build(),
            bollard::body_full(saved.into()),
            None,
        );
        let mut lines = Vec::new();
        while let Some(line) = loaded.next().await {
            lines.push(line.unwrap().stream.unwrap_or_default());
        }
        assert_eq!(lines, ["Loaded image: bb:1\n"]);
        let again = docker.inspect_image("bb:1").await.unwrap();
        assert_eq!(
            again.id.as_deref(),
            Some(id.as_str()),
            "save | load keeps the ID"
        );
    });
    // A truncated archive is refused and leaves nothing behind.
    let bad = d.raw("POST", "/images/load", b"this is not a tar archive at all");
    assert!(bad.status == 400 || bad.status == 500, "{}", bad.status);
    assert!(!bad.message().is_empty());
    assert_eq!(
        d.raw("GET", "/images/json", b"")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Runs `cmd` in a new container of `image`; its ID.
async fn create(
    docker: &bollard::Docker,
    name: Option<&str>,
    cmd: &[&str],
) -> Result<String, bollard::errors::Error> {
    let body = ContainerCreateBody {
        image: Some("bb".into()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let options = name.map(|n| CreateContainerOptionsBuilder::default().name(n).build());
    Ok(docker.create_container(options, body).await?.id)
}

async fn output(docker: &bollard::Docker, id: &str) -> (String, String) {
    let mut logs = docker.logs(
        id,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(entry) = logs.next().await {
        match entry.unwrap() {
            LogOutput::StdOut { message } => out.push_str(&String::from_utf8_lossy(&message)),
            LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
            other => panic!("unexpected {other:?}"),
        }
    }
    (out, err)
}

fn status_code(e: &bollard::errors::Error) -> u16 {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => *status_code,
        other => panic!("not a server error: {other:?}"),
    }
}

#[test]
fn containers_run_and_report_exit_codes_and_output() {
    if !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    runtime().block_on(async {
        let docker = d.docker();
        let id = create(
            &docker,
            Some("first"),
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        )
        .await
        .unwrap();
        // As the docker CLI does: wait before start.
        let wait = docker.wait_container(
            &id,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("next-exit")
                    .build(),
            ),
        );
        let waiter = tokio::spawn(async move { wait.collect::<Vec<_>>().await });
        docker.start_container(&id, None).await.unwrap();
        let waited = waiter.await.unwrap();
        match &waited[0] {
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => {
                assert_eq!(*code, 3)
            }
            other => panic!("expected exit code 3, got {other:?}"),
        }
        assert_eq!(output(&docker, &id).await, ("out\n".into(), "err\n".into()));
        let inspect = docker.inspect_container("first", None).await.unwrap();
        let state = inspect.state.unwrap();
        assert_eq!(state.exit_code, Some(3));
        assert_eq!(inspect.name.as_deref(), Some("/first"));

        let exited = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&[("status", vec!["exited"])].into_iter().collect())
                    .build(),
            ))
            .await
            .unwrap();
        assert_eq!(exited.len(), 1);
        assert_eq!(exited[0].id.as_deref(), Some(id.as_str()));
        assert!(exited[0]
            .status
            .as_deref()
            .unwrap()
            .starts_with("Exited (3)"));

        // The daemonless CLI sees the same records.
        let ps = d.cli(&["ps", "-a"]);
        assert!(
            String::from_utf8_lossy(&ps.stdout).contains("first"),
            "{ps:?}"
        );

        // Conflicts: the name taken, removal of a running container.
        let taken = create(&docker, Some("first"), &["true"]).await.unwrap_err();
        assert_eq!(status_code(&taken), 409);
        let sleeper = create(&docker, Some("sleeper"), &["sleep", "30"])
            .await
            .unwrap();
        docker.start_container(&sleeper, None).await.unwrap();
        let running = docker.remove_container(&sleeper, None).await.unwrap_err();
        assert_eq!(status_code(&running), 409);
        let listed = docker.list_containers(None).await.unwrap();
        assert_eq!(listed.len(), 1, "only the running one without all");
        docker
            .remove_container(
                &sleeper,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
        let gone = docker.inspect_container(&sleeper, None).await.unwrap_err();
        assert_eq!(status_code(&gone), 404);
        let missing_cmd = create(&docker, None, &["no-such-command"]).await.unwrap();
        let refused = docker
            .start_container(&missing_cmd, None)
            .await
            .unwrap_err();
        match &refused {
            bollard::errors::Error::DockerResponseServerError { message, .. } => {
                assert!(message.contains("executable file not found"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        docker.remove_container(&missing_cmd, None).await.unwrap();
        docker.remove_container(&id, None).await.unwrap();
    });
}

#[test]
fn sigterm_leaves_containers_running_for_the_next_daemon() {
    if !can_run_containers() {
        return;
    }
    let Some(mut d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    let rt = runtime();
    let id = rt.block_on(async {
        let docker = d.docker();
        let id = create(&docker, Some("long"), &["sleep", "60"])
            .await
            .unwrap();
        docker.start_container(&id, None).await.unwrap();
        id
    });
    // A client following the logs does not hold the daemon's exit.
    let follower = rt.spawn({
        let docker = d.docker();
        let id = id.clone();
        async move {
            let options = LogsOptionsBuilder::default()
                .stdout(true)
                .follow(true)
                .build();
            docker.logs(&id, Some(options)).collect::<Vec<_>>().await
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        d.stop(),
        Some(0),
        "a clean exit on SIGTERM; log:\n{}",
        d.log()
    );
    assert!(!d.socket.exists(), "the socket is removed on shutdown");
    follower.abort();
    let ps = d.cli(&["ps"]);
    assert!(
        String::from_utf8_lossy(&ps.stdout).contains("long"),
        "still running: {ps:?}"
    );
    d.spawn();
    rt.block_on(async {
        let docker = d.docker();
        let c = docker.inspect_container(&id, None).await.unwrap();
        assert_eq!(c.state.unwrap().running, Some(true));
        docker
            .kill_container(&id, None::<bollard::query_parameters::KillContainerOptions>)
            .await
            .unwrap();
        let waited: Vec<_> = docker.wait_container(&id, None).collect().await;
        match &waited[0] {
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => {
                assert_eq!(*code, 137)
            }
            other => panic!("expected 137 after SIGKILL, got {other:?}"),
        }
        docker.remove_container(&id, None).await.unwrap();
    });
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let Some(d) = Daemon::start() else { return };
    let out = std::process::Command::new(&d.binary)
        .arg("--root")
        .arg(d.dir.path().join("other-root"))
        .args(["--storage-driver", "vfs", "daemon", "-H"])
        .arg(format!("unix://{}", d.socket.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by a running daemon"), "{stderr}");
    assert_eq!(
        d.raw("GET", "/_ping", b"").status,
        200,
        "the first one still serves"
    );
}

#[test]
fn daemon_json_chooses_root_driver_and_socket() {
    let Some(binary) = strata_binary() else {
        eprintln!("SKIP: the strata binary is not built");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("from-json");
    let socket = dir.path().join("json.sock");
    let config = dir.path().join("daemon.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "data-root": root,
            "storage-driver": "vfs",
            "hosts": [format!("unix://{}", socket.display())],
            "log-level": "debug",
        })
        .to_string(),
    )
    .unwrap();
    let mut child = std::process::Command::new(&binary)
        .arg("daemon")
        .arg("--config-file")
        .arg(&config)
        .env_remove("STRATA_ROOT")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no socket from daemon.json's hosts"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let info = raw_request(&socket, "GET", "/info", &[], b"");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let status = child.wait().unwrap();
    assert_eq!(info.json()["Driver"], "vfs");
    assert_eq!(info.json()["DockerRootDir"], root.display().to_string());
    assert_eq!(mode & 0o777, 0o660, "socket mode");
    assert!(status.success(), "{status:?}");
    assert!(root.join("strata.db").exists());
}
