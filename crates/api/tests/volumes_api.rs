//! Volumes through bollard against a real `strata daemon`: create, list with filters,
//! inspect, remove (409 while a container uses it, 404 when missing), prune, and the
//! anonymous volumes of `Volumes` in a create body going with `DELETE ?v=1`.

mod common;

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    ListVolumesOptions, PruneVolumesOptions, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder,
};
use common::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn status_code(e: &bollard::errors::Error) -> u16 {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => *status_code,
        other => panic!("not a server error: {other:?}"),
    }
}

fn filters(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect()
}

#[test]
fn volumes_are_created_listed_guarded_and_pruned() {
    let Some(d) = Daemon::start() else { return };
    import_busybox(&d, "bb");
    runtime().block_on(async {
        let docker = d.docker();
        let created = docker
            .create_volume(VolumeCreateRequest {
                name: Some("data".into()),
                labels: Some([("team".to_string(), "db".to_string())].into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(created.name, "data");
        assert_eq!(created.driver, "local");
        assert_eq!(
            created.mountpoint,
            d.root.join("volumes/data/_data").to_str().unwrap()
        );
        assert_eq!(created.labels["team"], "db");
        assert!(created.created_at.is_some());
        let anonymous = docker
            .create_volume(VolumeCreateRequest::default())
            .await
            .unwrap();
        assert_eq!(anonymous.name.len(), 64);

        let inspect = docker.inspect_volume("data").await.unwrap();
        assert_eq!(
            inspect.scope.map(|s| s.to_string()).as_deref(),
            Some("local")
        );
        let missing = docker.inspect_volume("nosuch").await.unwrap_err();
        assert_eq!(status_code(&missing), 404);
        let bad = docker
            .create_volume(VolumeCreateRequest {
                name: Some("a/b".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status_code(&bad), 400);

        let names = |list: bollard::models::VolumeListResponse| -> Vec<String> {
            let mut n: Vec<String> = list.volumes.unwrap().into_iter().map(|v| v.name).collect();
            n.sort();
            n
        };
        let all = names(
            docker
                .list_volumes(None::<ListVolumesOptions>)
                .await
                .unwrap(),
        );
        assert_eq!(all.len(), 2);
        let labelled = ListVolumesOptions {
            filters: Some(filters(&[("label", "team=db")])),
        };
        assert_eq!(
            names(docker.list_volumes(Some(labelled)).await.unwrap()),
            ["data"]
        );

        // A container using `data` (and an anonymous volume from `Volumes`).
        let body = ContainerCreateBody {
            image: Some("bb".into()),
            cmd: Some(vec!["true".into()]),
            volumes: Some(vec!["/scratch".into()]),
            host_config: Some(HostConfig {
                binds: Some(vec!["data:/data".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .unwrap()
            .id;
        assert_eq!(
            names(
                docker
                    .list_volumes(None::<ListVolumesOptions>)
                    .await
                    .unwrap()
            )
            .len(),
            3
        );
        let dangling = ListVolumesOptions {
            filters: Some(filters(&[("dangling", "true")])),
        };
        assert_eq!(
            names(docker.list_volumes(Some(dangling)).await.unwrap()),
            std::slice::from_ref(&anonymous.name)
        );
        let refused = docker
            .remove_volume(
                "data",
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
            .unwrap_err();
        assert_eq!(status_code(&refused), 409);
        let message = format!("{refused}");
        assert!(message.contains("in use"), "{message}");

        docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::default().v(true).build()),
            )
            .await
            .unwrap();
        let left = names(
            docker
                .list_volumes(None::<ListVolumesOptions>)
                .await
                .unwrap(),
        );
        assert_eq!(
            left.len(),
            2,
            "v=1 removed the anonymous /scratch volume only"
        );
        assert!(left.contains(&"data".to_string()));

        // Prune: anonymous ones by default, all unused with all=true.
        let pruned = docker
            .prune_volumes(None::<PruneVolumesOptions>)
            .await
            .unwrap();
        assert_eq!(pruned.volumes_deleted, Some(vec![]));
        let pruned = docker
            .prune_volumes(Some(PruneVolumesOptions {
                filters: Some(filters(&[("all", "true"), ("label", "team=db")])),
            }))
            .await
            .unwrap();
        assert_eq!(pruned.volumes_deleted, Some(vec!["data".to_string()]));
        docker
            .remove_volume(
                &anonymous.name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
            .unwrap();
        let gone = docker
            .remove_volume(
                "data",
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
            .unwrap_err();
        assert_eq!(status_code(&gone), 404);
        docker
            .remove_volume(
                "data",
                Some(RemoveVolumeOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
        let df = d.raw("GET", "/v1.47/system/df", b"");
        assert_eq!(df.json()["Volumes"], serde_json::json!([]));
    });
}
