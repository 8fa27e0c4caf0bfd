//! The registry verbs: `push`, `login` and `logout`. Credentials live where the docker CLI
//! keeps them (`auths` of `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), so
//! that `docker login` and `strata login` serve each other.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use strata_distribution::credentials::DOCKER_HUB_AUTH_KEY;
use strata_distribution::{Client, CredentialSource, Credentials, Options, TransportConfig};
use strata_engine::images::PushEvent;
use strata_engine::Engine;

#[derive(Args)]
pub struct PushArgs {
    /// `HOST[:PORT]/NAME[:TAG]`: the image as tagged locally, registry included.
    pub reference: String,
    /// Print only the pushed reference.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct LoginArgs {
    /// `HOST[:PORT]` of the registry (Docker Hub when left out).
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Args)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

/// How registries are reached: dockerd's defaults; `STRATA_CERTS_D` names another
/// `certs.d` root (tests point it at their own CA rather than writing to /etc).
pub fn transport() -> TransportConfig {
    let mut config = TransportConfig::default();
    if let Some(dir) = std::env::var_os("STRATA_CERTS_D") {
        config.certs_dir = PathBuf::from(dir);
    }
    config
}

pub fn push(engine: &Engine, args: &PushArgs, out: &mut impl Write) -> Result<()> {
    let client = Client::new(Options {
        transport: transport(),
        credentials: CredentialSource::DockerConfig(None),
    });
    let quiet = args.quiet;
    // The caller holds stdout's lock: the push runs on a thread of its own and sends its
    // lines here, where they are written in the order they come.
    let (send, lines) = std::sync::mpsc::channel::<String>();
    let pushing = Mutex::new(std::collections::HashSet::new());
    let pushed = std::thread::scope(|scope| {
        let pushing = &pushing;
        let client = &client;
        let worker = scope.spawn(move || {
            let send = Mutex::new(send);
            let say = |line: String| {
                let _ = send.lock().unwrap().send(line);
            };
            engine
                .images()
                .push(&args.reference, client, &|event| match event {
                    PushEvent::Repository(r) => say(format!("The push refers to repository [{r}]")),
                    PushEvent::Preparing { id } => say(format!("{id}: Preparing")),
                    // Without a terminal to redraw, one line per layer says it started.
                    PushEvent::Pushing { id, .. } => {
                        if pushing.lock().unwrap().insert(id.clone()) {
                            say(format!("{id}: Pushing"));
                        }
                    }
                    PushEvent::Pushed { id } => say(format!("{id}: Pushed")),
                    PushEvent::Exists { id } => say(format!("{id}: Layer already exists")),
                })
        });
        for line in lines {
            if !quiet {
                let _ = writeln!(out, "{line}");
            }
        }
        worker.join().expect("the push thread panicked")
    })?;
    if quiet {
        writeln!(out, "{}", args.reference)?;
    } else {
        writeln!(
            out,
            "{}: digest: {} size: {}",
            pushed.tag, pushed.digest, pushed.size
        )?;
    }
    Ok(())
}

/// The `auths` key docker files `server` under: Docker Hub's v1 address, else the host.
fn auth_key(server: Option<&str>) -> String {
    let server = server.unwrap_or("docker.io");
    let host = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_AUTH_KEY.into(),
        _ => host.to_string(),
    }
}

/// The registry as references name it, for the client.
fn registry_name(key: &str) -> &str {
    if key == DOCKER_HUB_AUTH_KEY {
        "docker.io"
    } else {
        key
    }
}

fn config_path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".docker/config.json"))
}

fn read_config(path: &PathBuf) -> Result<serde_json::Map<String, serde_json::Value>> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            _ => bail!("{} is not a docker config file", path.display()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Written beside, mode 0600, then renamed: a reader never sees half a file.
fn write_config(path: &PathBuf, config: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let dir = path.parent().context("config path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut bytes = serde_json::to_vec_pretty(config)?;
    bytes.push(b'\n');
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

pub fn login(args: &LoginArgs, out: &mut impl Write) -> Result<()> {
    let key = auth_key(args.server.as_deref());
    let Some(username) = args.username.clone() else {
        bail!("login needs a username (-u USER)");
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut p = String::new();
            io::stdin().read_to_string(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("login needs a password (-p PASS or --password-stdin)"),
    };
    if password.is_empty() {
        bail!("password is empty");
    }
    let registry = registry_name(&key).to_string();
    let credentials = Credentials::Basic {
        username: username.clone(),
        password: password.clone(),
    };
    let client = Client::new(Options {
        transport: transport(),
        credentials: CredentialSource::Fixed([(registry.clone(), credentials)].into()),
    });
    client
        .login(&registry)
        .with_context(|| format!("login to {registry} failed"))?;
    let path = config_path()?;
    let mut config = read_config(&path)?;
    let auths = config
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auths[key.as_str()] = serde_json::json!({ "auth": auth });
    write_config(&path, &config)?;
    writeln!(out, "Login Succeeded")?;
    Ok(())
}

pub fn logout(args: &LogoutArgs, out: &mut impl Write) -> Result<()> {
    let key = auth_key(args.server.as_deref());
    let path = config_path()?;
    let mut config = read_config(&path)?;
    let removed = config
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .and_then(|a| a.remove(&key))
        .is_some();
    if removed {
        write_config(&path, &config)?;
        writeln!(out, "Removing login credentials for {key}")?;
    } else {
        writeln!(out, "Not logged in to {key}")?;
    }
    Ok(())
}
