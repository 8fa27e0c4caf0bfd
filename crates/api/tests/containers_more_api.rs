//! Container endpoints beyond the run cycle through bollard against a real `strata
//! daemon`: exec (output, exit code, inspect), changes, archive (stat, download, upload),
//! top, commit with a config body, pause/unpause, rename, prune; raw HTTP for build.

mod common;

use std::io::Read;

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerConfig, ContainerCreateBody, ExecConfig};
use bollard::query_parameters::{
    CommitContainerOptions, ContainerArchiveInfoOptions, CreateContainerOptions,
    DownloadFromContainerOptions, PruneContainersOptions, RenameContainerOptions,
    UploadToContainerOptions,
};
use common::*;
use futures_util::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn status_code(e: &bollard::errors::Error) -> u16 {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => *status_code,
        other => panic!("not a server error: {other:?}"),
    }
}

async fn run_detached(docker: &bollard::Docker, name: &str, cmd: &[&str]) -> String {
    let body = ContainerCreateBody {
        image: Some("bb".into()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.into()),
        ..Default::default()
    };
    let id = docker
        .create_container(Some(options), body)
        .await
        .unwrap()
        .id;
    docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
    id
}

async fn exec(docker: &bollard::Docker, id: &str, cmd: &[&str]) -> (String, String, i64) {
    let config = ExecConfig {
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker.create_exec(id, config).await.unwrap().id;
    let started = docker
        .start_exec(&exec, None::<StartExecOptions>)
        .await
        .unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(chunk) = output.next().await {
            match chunk.unwrap() {
                LogOutput::StdOut { message } => out.push_str(&String::from_utf8_lossy(&message)),
                LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
                _ => {}
            }
        }
    } else {
        panic!("not attached");
    }
    let inspect = docker.inspect_exec(&exec).await.unwrap();
    assert_eq!(inspect.running, Some(false));
    assert_eq!(inspect.container_id.as_deref(), Some(id));
    (out, err, inspect.exit_code.unwrap())
}

#[test]
fn exec_changes_archive_top_commit_and_prune() {
    if !can_run_containers() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    runtime().block_on(async {
        let docker = d.docker();
        let id = run_detached(&docker, "box", &["sleep", "60"]).await;

        let (out, err, code) = exec(
            &docker,
            &id,
            &["sh", "-c", "echo hi; echo oops >&2; exit 4"],
        )
        .await;
        assert_eq!((out.as_str(), err.as_str(), code), ("hi\n", "oops\n", 4));
        let (_, err, code) = exec(&docker, &id, &["nosuch"]).await;
        assert_eq!(code, 127, "{err}");
        let missing = docker.inspect_exec("nosuch").await.unwrap_err();
        assert_eq!(status_code(&missing), 404);
        let (_, _, code) = exec(
            &docker,
            &id,
            &["sh", "-c", "mkdir /made && echo x > /made/f"],
        )
        .await;
        assert_eq!(code, 0);

        let changes = docker.container_changes(&id).await.unwrap().unwrap();
        let added: Vec<String> = changes
            .iter()
            .filter(|c| c.kind.to_string() == "1")
            .map(|c| c.path.clone())
            .collect();
        assert!(
            added.contains(&"/made".to_string()) && added.contains(&"/made/f".to_string()),
            "{changes:?}"
        );

        let stat = docker
            .get_container_archive_info(
                &id,
                Some(ContainerArchiveInfoOptions {
                    path: "/made/f".into(),
                }),
            )
            .await
            .unwrap();
        assert_eq!((stat.name.as_str(), stat.size), ("f", 2));
        let gone = docker
            .get_container_archive_info(
                &id,
                Some(ContainerArchiveInfoOptions {
                    path: "/none".into(),
                }),
            )
            .await
            .unwrap_err();
        assert_eq!(status_code(&gone), 404);
        let tar: Vec<u8> = docker
            .download_from_container(
                &id,
                Some(DownloadFromContainerOptions {
                    path: "/made".into(),
                }),
            )
            .map(|c| c.unwrap().to_vec())
            .concat()
            .await;
        let mut archive = tar::Archive::new(&tar[..]);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name.ends_with('f') {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                assert_eq!(text, "x\n");
            }
            names.push(name);
        }
        assert!(
            names.iter().any(|n| n.trim_end_matches('/') == "made"),
            "{names:?}"
        );

        let mut upload = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        upload
            .append_data(&mut header, "up.txt", &b"upload"[..])
            .unwrap();
        let upload = upload.into_inner().unwrap();
        docker
            .upload_to_container(
                &id,
                Some(UploadToContainerOptions {
                    path: "/made".into(),
                    ..Default::default()
                }),
                bollard::body_full(upload.clone().into()),
            )
            .await
            .unwrap();
        let (out, _, _) = exec(&docker, &id, &["cat", "/made/up.txt"]).await;
        assert_eq!(out, "upload");
        let refused = docker
            .upload_to_container(
                &id,
                Some(UploadToContainerOptions {
                    path: "/made/f".into(),
                    ..Default::default()
                }),
                bollard::body_full(upload.into()),
            )
            .await
            .unwrap_err();
        assert_eq!(status_code(&refused), 400);

        let top = docker
            .top_processes(&id, None::<bollard::query_parameters::TopOptions>)
            .await
            .unwrap();
        let titles = top.titles.unwrap();
        assert!(titles.contains(&"PID".to_string()), "{titles:?}");
        let processes = top.processes.unwrap();
        assert!(
            processes
                .iter()
                .any(|p| p.last().is_some_and(|c| c.contains("sleep 60"))),
            "{processes:?}"
        );

        docker.pause_container(&id).await.unwrap();
        docker.unpause_container(&id).await.unwrap();
        docker
            .rename_container(
                &id,
                RenameContainerOptions {
                    name: "renamed".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            docker
                .inspect_container(
                    "renamed",
                    None::<bollard::query_parameters::InspectContainerOptions>
                )
                .await
                .unwrap()
                .id
                .as_deref(),
            Some(id.as_str())
        );

        let committed = docker
            .commit_container(
                CommitContainerOptions {
                    container: Some(id.clone()),
                    repo: Some("bb".into()),
                    tag: Some("made".into()),
                    comment: Some("with /made".into()),
                    pause: true,
                    ..Default::default()
                },
                ContainerConfig {
                    cmd: Some(vec!["cat".into(), "/made/f".into()]),
                    env: Some(vec!["FROM_BODY=yes".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let image = docker.inspect_image("bb:made").await.unwrap();
        assert_eq!(image.id.as_deref(), Some(committed.id.as_str()));
        let config = image.config.unwrap();
        assert_eq!(
            config.cmd,
            Some(vec!["cat".to_string(), "/made/f".to_string()])
        );
        assert!(config.env.unwrap().contains(&"FROM_BODY=yes".to_string()));

        let stopped = run_detached(&docker, "short", &["true"]).await;
        let mut waited = docker.wait_container(
            &stopped,
            None::<bollard::query_parameters::WaitContainerOptions>,
        );
        while waited.next().await.is_some() {}
        let pruned = docker
            .prune_containers(None::<PruneContainersOptions>)
            .await
            .unwrap();
        assert_eq!(pruned.containers_deleted, Some(vec![stopped]));
        docker
            .remove_container(
                &id,
                Some(bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
    });
    let build = d.raw("POST", "/v1.47/build", b"not a tar");
    assert_eq!(build.status, 400);
    assert!(
        build.message().contains("build context"),
        "{}",
        build.message()
    );
}
