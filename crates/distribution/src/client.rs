//! A registry session per host: the first request pings `/v2/` to learn the scheme that
//! works and the auth it asks for; later requests carry basic credentials or a bearer token
//! for their scope (`repository:NAME:pull[,push]`), fetched from the challenge's realm and
//! cached until it expires. A 401 on a token gets one fresh token, then is an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use ureq::http::{Response, StatusCode};
use ureq::Body;

use crate::challenge::{self, Challenge};
use crate::credentials::{CredentialSource, Credentials};
use crate::transport::{self, Endpoint, TransportConfig};
use crate::{Error, Result};

/// Bodies of error answers are read only this far: they are for messages.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
const TOKEN_BODY_LIMIT: u64 = 1024 * 1024;
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub transport: TransportConfig,
    pub credentials: CredentialSource,
}

/// A registry client. Cheap to clone and usable from many threads at once (one blob per
/// thread); connections are pooled per registry.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

pub(crate) struct Host {
    pub endpoint: Endpoint,
    auth: Auth,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

enum Auth {
    None,
    Basic {
        credentials: Option<Credentials>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        credentials: Option<Credentials>,
    },
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A request body-less call is replayed after a token refresh; one streaming a body is not.
pub(crate) type SendFn<'a> =
    dyn FnMut(&Endpoint, Option<&str>) -> Result<Response<Body>, ureq::Error> + 'a;

impl Client {
    pub fn new(options: Options) -> Client {
        Client {
            inner: Arc::new(Inner {
                options,
                hosts: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// `docker login`'s check: `GET /v2/` on `registry` (`host[:port]`, `docker.io`) with
    /// the credentials this client has for it; an auth error when the registry refuses them.
    pub fn login(&self, registry: &str) -> Result<()> {
        let probe = crate::Reference::parse_normalized(&format!("{registry}/login-probe"))
            .map_err(|e| Error::Protocol {
                what: format!("registry {registry}"),
                message: e.to_string(),
            })?;
        let what = format!("login to {registry}");
        let host = self.host(probe.registry(), probe.api_host())?;
        let mut send = |endpoint: &Endpoint, auth: Option<&str>| {
            let request = endpoint.agent.get(format!("{}/v2/", endpoint.base));
            match auth {
                Some(auth) => request.header("authorization", auth),
                None => request,
            }
            .call()
        };
        check(&what, self.call(&host, "", &what, true, &mut send)?)?;
        Ok(())
    }

    /// The session for `registry` (`host[:port]` as in references), pinging it the first time.
    pub(crate) fn host(&self, registry: &str, api_host: &str) -> Result<Arc<Host>> {
        if let Some(host) = self.inner.hosts.lock().unwrap().get(registry) {
            return Ok(host.clone());
        }
        let host = Arc::new(self.connect(registry, api_host)?);
        self.inner
            .hosts
            .lock()
            .unwrap()
            .insert(registry.to_string(), host.clone());
        Ok(host)
    }

    fn connect(&self, registry: &str, api_host: &str) -> Result<Host> {
        let endpoints = transport::endpoints(&self.inner.options.transport, api_host)?;
        let what = format!("registry {registry}");
        // When HTTPS fails and plain HTTP fails too, the HTTPS failure is the one to report.
        let mut first_error: Option<Error> = None;
        for endpoint in endpoints {
            let url = format!("{}/v2/", endpoint.base);
            let failed = match endpoint.agent.get(&url).call() {
                Ok(response) if matches!(response.status().as_u16(), 200..=299 | 401) => {
                    let credentials = self.inner.options.credentials.lookup(registry)?;
                    let auth = match response.status().as_u16() {
                        401 => auth_from_challenges(&challenges(&response), credentials),
                        _ => Auth::None,
                    };
                    let tokens = Mutex::new(HashMap::new());
                    return Ok(Host {
                        endpoint,
                        auth,
                        tokens,
                    });
                }
                Ok(response) => status_error(&what, response),
                Err(e) => transport_error(&what, e, endpoint.max_redirects),
            };
            first_error.get_or_insert(failed);
        }
        Err(match first_error {
            Some(Error::Tls { what, message }) => {
                let dir = self.inner.options.transport.certs_dir.join(api_host);
                let hint = format!("a private registry's CA goes in {}/ca.crt", dir.display());
                Error::Tls {
                    what,
                    message: format!("{message} ({hint})"),
                }
            }
            Some(other) => other,
            None => Error::Connect {
                what,
                message: "no endpoint".into(),
            },
        })
    }

    /// Sends a request for `scope`, refreshing a bearer token once on a 401 when `replayable`.
    /// A final 401 or 403 is an error here; other answers come back for [`check`] or the
    /// caller to judge.
    pub(crate) fn call(
        &self,
        host: &Host,
        scope: &str,
        what: &str,
        replayable: bool,
        send: &mut SendFn,
    ) -> Result<Response<Body>> {
        let authorization = self.authorization(host, scope, what, None)?;
        let redirects = host.endpoint.max_redirects;
        let mut response = send(&host.endpoint, authorization.as_deref())
            .map_err(|e| transport_error(what, e, redirects))?;
        if response.status() == StatusCode::UNAUTHORIZED
            && replayable
            && matches!(host.auth, Auth::Bearer { .. })
        {
            let authorization = self.authorization(host, scope, what, authorization.as_deref())?;
            response = send(&host.endpoint, authorization.as_deref())
                .map_err(|e| transport_error(what, e, redirects))?;
        }
        if !matches!(response.status().as_u16(), 401 | 403) {
            return Ok(response);
        }
        match status_error(what, response) {
            Error::Unauthorized {
                what,
                status,
                message,
            } => {
                let message = format!("{message} ({})", host.auth.describe());
                Err(Error::Unauthorized {
                    what,
                    status,
                    message,
                })
            }
            other => Err(other),
        }
    }

    fn authorization(
        &self,
        host: &Host,
        scope: &str,
        what: &str,
        rejected: Option<&str>,
    ) -> Result<Option<String>> {
        match &host.auth {
            Auth::None => Ok(None),
            Auth::Basic {
                credentials: Some(Credentials::Basic { username, password }),
            } => {
                let pair = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Ok(Some(format!("Basic {pair}")))
            }
            Auth::Basic {
                credentials: Some(Credentials::RegistryToken(token)),
            } => Ok(Some(format!("Bearer {token}"))),
            Auth::Basic { .. } => Ok(None),
            Auth::Bearer {
                credentials: Some(Credentials::RegistryToken(token)),
                ..
            } => Ok(Some(format!("Bearer {token}"))),
            Auth::Bearer {
                realm,
                service,
                credentials,
            } => {
                let mut tokens = host.tokens.lock().unwrap();
                if let Some((token, until)) = tokens.get(scope) {
                    let header = format!("Bearer {token}");
                    // A token another thread renewed after ours was rejected is good.
                    if Instant::now() < *until && rejected != Some(header.as_str()) {
                        return Ok(Some(header));
                    }
                }
                // Held across the fetch so threads wanting the same scope fetch it once.
                let (token, lifetime) = fetch_token(
                    host,
                    realm,
                    service.as_deref(),
                    credentials.as_ref(),
                    scope,
                    what,
                )?;
                // Renew a little early so a token does not lapse between check and use.
                let until = Instant::now() + lifetime.saturating_sub(lifetime / 10);
                tokens.insert(scope.to_string(), (token.clone(), until));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }
}

impl Auth {
    /// Which credentials were tried, for 401 messages (never the secret).
    fn describe(&self) -> String {
        let credentials = match self {
            Auth::None => return "the registry asked for no credentials".into(),
            Auth::Basic { credentials } | Auth::Bearer { credentials, .. } => credentials,
        };
        match credentials {
            None => "no credentials for this registry: log in first".into(),
            Some(Credentials::Basic { username, .. }) => format!("as user {username:?}"),
            Some(Credentials::IdentityToken(_)) => "with the identity token from the login".into(),
            Some(Credentials::RegistryToken(_)) => "with the registry token from the login".into(),
        }
    }
}

fn challenges(response: &Response<Body>) -> Vec<Challenge> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .collect()
}

fn auth_from_challenges(challenges: &[Challenge], credentials: Option<Credentials>) -> Auth {
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        if let Some(realm) = bearer.params.get("realm") {
            return Auth::Bearer {
                realm: realm.clone(),
                service: bearer.params.get("service").cloned(),
                credentials,
            };
        }
    }
    Auth::Basic { credentials }
}

/// The token protocol: GET the realm with `service` and `scope` (basic credentials if any),
/// or POST a refresh token (OAuth2) when the login stored one.
fn fetch_token(
    host: &Host,
    realm: &str,
    service: Option<&str>,
    credentials: Option<&Credentials>,
    scope: &str,
    what: &str,
) -> Result<(String, Duration)> {
    let token_what = format!("{what}: token from {realm}");
    let agent = &host.endpoint.agent;
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let result = match credentials {
        Some(Credentials::IdentityToken(refresh)) => {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", "strata"),
            ];
            if let Some(service) = service {
                form.push(("service", service));
            }
            let scope_joined = scopes.join(" ");
            form.push(("scope", &scope_joined));
            agent.post(realm).send_form(form)
        }
        _ => {
            let mut request = agent.get(realm);
            if let Some(service) = service {
                request = request.query("service", service);
            }
            for s in &scopes {
                request = request.query("scope", *s);
            }
            if let Some(Credentials::Basic { username, password }) = credentials {
                let pair = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                request = request.header("Authorization", format!("Basic {pair}"));
            }
            request.call()
        }
    };
    let response =
        result.map_err(|e| transport_error(&token_what, e, host.endpoint.max_redirects))?;
    let mut response = check(&token_what, response)?;
    let body = response
        .body_mut()
        .with_config()
        .limit(TOKEN_BODY_LIMIT)
        .read_to_vec()
        .map_err(|e| transport_error(&token_what, e, host.endpoint.max_redirects))?;
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
        what: token_what.clone(),
        message: format!("not a token answer: {e}"),
    })?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Protocol {
            what: token_what.clone(),
            message: "the answer holds no token".into(),
        })?;
    let lifetime = answer
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Ok((token, lifetime.max(Duration::from_secs(1))))
}

/// Passes a 2xx answer through; anything else becomes the error its status means.
pub(crate) fn check(what: &str, response: Response<Body>) -> Result<Response<Body>> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(status_error(what, response))
    }
}

pub(crate) fn status_error(what: &str, mut response: Response<Body>) -> Error {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT)
        .read_to_vec()
        .unwrap_or_default();
    let message = registry_message(&body, status);
    let what = what.to_string();
    match status {
        401 | 403 => Error::Unauthorized {
            what,
            status,
            message,
        },
        404 => Error::NotFound { what, message },
        _ => Error::Registry {
            what,
            status,
            message,
        },
    }
}

/// The distribution error envelope (`{"errors":[{"code","message"}]}`), else the body's text.
fn registry_message(body: &[u8], status: u16) -> String {
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        let parts: Vec<String> = envelope
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.clone()
                } else {
                    format!("{}: {}", e.code, e.message)
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_string()
    } else {
        text.chars().take(300).collect()
    }
}

pub(crate) fn transport_error(what: &str, error: ureq::Error, max_redirects: u32) -> Error {
    let what = what.to_string();
    match error {
        ureq::Error::TooManyRedirects => Error::TooManyRedirects {
            what,
            max: max_redirects,
        },
        ureq::Error::Rustls(e) => Error::Tls {
            what,
            message: e.to_string(),
        },
        ureq::Error::Tls(e) => Error::Tls {
            what,
            message: e.to_string(),
        },
        ureq::Error::Io(e) if is_tls_io(&e) => Error::Tls {
            what,
            message: e.to_string(),
        },
        other => Error::Connect {
            what,
            message: other.to_string(),
        },
    }
}

/// rustls reports handshake failures (an unknown issuer, a bad client certificate) through
/// the socket as `io::Error`s wrapping its own error.
fn is_tls_io(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}
