//! Bazel's HTTP remote-cache protocol: `GET`/`HEAD`/`PUT` of `{base}/cas/{sha256}` and
//! `{base}/ac/{sha256}`; 200 is found, 404 is absent, anything else is an error (never a
//! "found"). HTTP/1.1 over rustls; a private CA from `REDO_CACHE_CA` is trusted besides the
//! built-in web roots; basic auth from the URL. Redirects are not followed (credentials must
//! not travel to another host; a redirect is an error status).

use super::backend::{Area, BlobSink, CONNECT_TIMEOUT, MAX_SMALL, SMALL_TIMEOUT, timeout_for};
use super::error::CacheError;
use reqwest::{Method, StatusCode};
use std::path::Path;
use std::time::Duration;

pub struct HttpBackend {
    client: reqwest::Client,
    base: String,
    user: Option<String>,
    password: Option<String>,
}

/// A reqwest error in plain words, without the URL (the caller names it): what failed, and
/// the system's reason at the bottom of its causes when there is one (`cannot connect:
/// connection refused`), not the HTTP library's layers (`client error (Connect): tcp connect
/// error: Connection refused (os error 111)`).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut innermost: Option<&dyn std::error::Error> = None;
    while let Some(c) = src {
        innermost = Some(c);
        src = c.source();
    }
    match innermost {
        Some(c) => match c.downcast_ref::<std::io::Error>() {
            Some(io) => format!("{kind}: {}", redo_proto::plain::words(io)),
            None => format!("{kind}: {c}"),
        },
        None => kind.to_string(),
    }
}

impl HttpBackend {
    pub fn new(
        base: &str,
        user: Option<&str>,
        password: Option<&str>,
        ca: Option<&Path>,
    ) -> Result<HttpBackend, CacheError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("redod/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| CacheError::Config {
                var: "REDO_CACHE_CA",
                what: crate::store::Error::io("read", ca)(e).to_string(),
                fix: "name a readable PEM file holding the CA certificate",
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| CacheError::Config {
                    var: "REDO_CACHE_CA",
                    what: format!("no PEM certificate in {}", ca.display()),
                    fix: "name a PEM file (-----BEGIN CERTIFICATE-----)",
                })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(|e| CacheError::Config {
            var: "REDO_CACHE",
            what: format!("cannot set up the HTTP client: {}", describe(e)),
            fix: "check REDO_CACHE_CA",
        })?;
        Ok(HttpBackend {
            client,
            base: base.to_string(),
            user: user.map(str::to_string),
            password: password.map(str::to_string),
        })
    }

    fn url(&self, area: Area, hex: &str) -> String {
        format!("{}/{}/{}", self.base, area.dir(), hex)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        timeout: Duration,
        body: Option<bytes::Bytes>,
    ) -> Result<reqwest::Response, CacheError> {
        let mut r = self.client.request(method, url).timeout(timeout);
        if let Some(u) = &self.user {
            r = r.basic_auth(u, self.password.as_ref());
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        r.send().await.map_err(|e| CacheError::Transport {
            url: url.to_string(),
            what: describe(e),
        })
    }

    fn status(url: &str, s: StatusCode) -> CacheError {
        CacheError::Status {
            url: url.to_string(),
            status: s.as_u16(),
        }
    }

    pub async fn get(&self, area: Area, hex: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let url = self.url(area, hex);
        let mut resp = self.send(Method::GET, &url, SMALL_TIMEOUT, None).await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(Self::status(&url, s)),
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| CacheError::Transport {
            url: url.clone(),
            what: describe(e),
        })? {
            if (out.len() + chunk.len()) as u64 > MAX_SMALL {
                return Err(CacheError::BadEntry {
                    key: hex.to_string(),
                    what: format!("larger than {MAX_SMALL} bytes"),
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    pub async fn get_into(&self, hex: &str, sink: &mut BlobSink) -> Result<bool, CacheError> {
        let url = self.url(Area::Cas, hex);
        let timeout = timeout_for(sink.expected_size());
        let mut resp = self.send(Method::GET, &url, timeout, None).await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(false),
            s => return Err(Self::status(&url, s)),
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| CacheError::Transport {
            url: url.clone(),
            what: describe(e),
        })? {
            sink.write(&chunk).await?;
        }
        Ok(true)
    }

    pub async fn head(&self, area: Area, hex: &str) -> Result<bool, CacheError> {
        let url = self.url(area, hex);
        let resp = self.send(Method::HEAD, &url, SMALL_TIMEOUT, None).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(Self::status(&url, s)),
        }
    }

    pub async fn put(&self, area: Area, hex: &str, body: bytes::Bytes) -> Result<(), CacheError> {
        let url = self.url(area, hex);
        let timeout = timeout_for(body.len() as u64);
        let resp = self.send(Method::PUT, &url, timeout, Some(body)).await?;
        let s = resp.status();
        if s.is_success() {
            Ok(())
        } else {
            Err(Self::status(&url, s))
        }
    }
}
