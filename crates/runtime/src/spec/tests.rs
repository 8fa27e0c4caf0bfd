use super::*;

fn spec(dir: &Path) -> ContainerSpec {
    ContainerSpec::new("abc123", dir, vec!["true".into()])
}

fn err(spec: &ContainerSpec) -> String {
    spec.to_oci().unwrap_err().to_string()
}

#[test]
fn defaults_match_docker() {
    let dir = tempfile::tempdir().unwrap();
    let oci = spec(dir.path()).to_oci().unwrap();
    let linux = oci.linux().as_ref().unwrap();
    let kinds: Vec<_> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(kinds.len(), 5);
    assert!(kinds.contains(&LinuxNamespaceType::Network));
    let process = oci.process().as_ref().unwrap();
    let caps = process.capabilities().as_ref().unwrap();
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
    assert_eq!(process.no_new_privileges(), Some(true));
    assert_eq!(oci.hostname().as_deref(), Some("abc123"));
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/strata/abc123"))
    );
    let dests: Vec<_> = oci
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().clone())
        .collect();
    assert_eq!(dests[0], Path::new("/proc"));
    assert!(dests.contains(&PathBuf::from("/sys/fs/cgroup")));
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
}

#[test]
fn host_network_keeps_the_host_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.network = NetworkMode::Host;
    let oci = s.to_oci().unwrap();
    let namespaces = oci.linux().as_ref().unwrap().namespaces().clone().unwrap();
    assert!(namespaces
        .iter()
        .all(|n| n.typ() != LinuxNamespaceType::Network));
}

#[test]
fn a_namespace_path_is_joined() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.network = NetworkMode::Path("/run/netns/n1".into());
    let oci = s.to_oci().unwrap();
    let namespaces = oci.linux().as_ref().unwrap().namespaces().clone().unwrap();
    let network: Vec<_> = namespaces
        .iter()
        .filter(|n| n.typ() == LinuxNamespaceType::Network)
        .collect();
    assert_eq!(network.len(), 1);
    assert_eq!(
        network[0].path().as_deref(),
        Some(std::path::Path::new("/run/netns/n1"))
    );
}

#[test]
fn network_modes_parse_and_keep_their_stored_names() {
    assert_eq!("none".parse::<NetworkMode>().unwrap(), NetworkMode::None);
    assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
    assert!("bridge".parse::<NetworkMode>().is_err());
    // Configs written before the type moved here hold these strings.
    assert_eq!(
        serde_json::to_string(&NetworkMode::Host).unwrap(),
        "\"host\""
    );
    let none: NetworkMode = serde_json::from_str("\"none\"").unwrap();
    assert_eq!(none, NetworkMode::None);
}

#[test]
fn limits_become_cgroup_resources() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.resources = Resources {
        memory: Some(64 << 20),
        cpus: Some(0.5),
        pids_limit: Some(20),
    };
    let oci = s.to_oci().unwrap();
    let r = oci.linux().as_ref().unwrap().resources().clone().unwrap();
    assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
    assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(r.cpu().as_ref().unwrap().period(), Some(CPU_PERIOD));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
}

#[test]
fn bad_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.resources.memory = Some(-1);
    assert!(err(&s).contains("invalid memory limit -1"));
    s.resources.memory = None;
    s.resources.cpus = Some(0.0);
    assert!(err(&s).contains("invalid --cpus 0"));
    s.resources.cpus = Some(host_cpus() as f64 + 1.0);
    assert!(err(&s).contains("CPUs available"));
    s.resources.cpus = None;
    s.mounts = vec![MountSpec::Tmpfs {
        target: "relative".into(),
        options: vec![],
    }];
    assert!(err(&s).contains("invalid mount target relative"));
    s.mounts = vec![MountSpec::Bind {
        source: "/no/such/dir".into(),
        target: "/x".into(),
        readonly: false,
    }];
    assert_eq!(err(&s), "bind source /no/such/dir does not exist");
}

#[test]
fn user_mounts_replace_defaults_and_come_parents_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.mounts = vec![
        MountSpec::Tmpfs {
            target: "/data/sub".into(),
            options: vec!["exec".into()],
        },
        MountSpec::Bind {
            source: dir.path().into(),
            target: "/data".into(),
            readonly: true,
        },
        MountSpec::Tmpfs {
            target: "/dev/shm".into(),
            options: vec!["size=1m".into()],
        },
    ];
    let oci = s.to_oci().unwrap();
    let mounts = oci.mounts().as_ref().unwrap();
    let shm: Vec<_> = mounts
        .iter()
        .filter(|m| m.destination() == Path::new("/dev/shm"))
        .collect();
    assert_eq!(shm.len(), 1);
    assert!(shm[0]
        .options()
        .as_ref()
        .unwrap()
        .contains(&"size=1m".to_string()));
    let pos = |d: &str| {
        mounts
            .iter()
            .position(|m| m.destination() == Path::new(d))
            .unwrap()
    };
    assert!(pos("/data") < pos("/data/sub"));
    let data = &mounts[pos("/data")];
    assert_eq!(
        data.options().as_ref().unwrap(),
        &["rbind", "rprivate", "ro"]
    );
}

#[test]
fn bundle_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let oci = spec(dir.path()).to_oci().unwrap();
    let path = write_bundle(&oci, dir.path()).unwrap();
    let back: Spec = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(back, oci);
    assert!(!dir.path().join(".config.json.tmp").exists());
}
