//! A real nginx serving WebDAV on 127.0.0.1 (an ephemeral port, its config and files in a
//! temporary directory): the shared build cache's server in the end-to-end tests. Without
//! nginx the tests that need it fail and say how to install it.

use crate::TempDir;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NGINX: &str = "/usr/sbin/nginx";

/// An nginx process, killed on drop.
pub struct Nginx {
    child: Option<Child>,
    pub dir: TempDir,
    pub port: u16,
    https: bool,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

fn io<T>(what: &str, p: &Path, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("cannot {what} {}: {e}", p.display()))
}

impl Nginx {
    /// Plain http, or https with a private CA made by `openssl` ([`Nginx::ca`]). Panics
    /// (the tests' way to fail) when it cannot.
    pub fn start(https: bool) -> Nginx {
        Nginx::try_start(https).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Nginx::start`] with HTTP basic authentication (`user`, `password`) on everything.
    pub fn start_with_auth(https: bool, user: &str, password: &str) -> Nginx {
        Nginx::try_start_with(https, Some((user, password))).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Nginx::start`], with the reason it could not as an error (for the benchmark).
    pub fn try_start(https: bool) -> Result<Nginx, String> {
        Nginx::try_start_with(https, None)
    }

    fn try_start_with(https: bool, auth: Option<(&str, &str)>) -> Result<Nginx, String> {
        if !Path::new(NGINX).exists() {
            return Err(format!(
                "{NGINX} is missing: the shared-cache tests and benchmark need nginx (with \
                 WebDAV) and openssl; run tests/setup-and-test.sh, which installs them"
            ));
        }
        let dir = TempDir::new("nginx");
        let d = dir.0.clone();
        io("create", &d, fs::create_dir_all(d.join("root")))?;
        io("create", &d, fs::create_dir_all(d.join("tmp")))?;
        let mut server_tls = String::new();
        if https {
            make_certs(&d)?;
            server_tls = format!(
                "ssl_certificate {0}/server.pem; ssl_certificate_key {0}/server.key;",
                d.display()
            );
        }
        let mut auth_conf = String::new();
        if let Some((user, pass)) = auth {
            let out = io(
                "run",
                Path::new("openssl"),
                Command::new("openssl")
                    .args(["passwd", "-apr1", pass])
                    .output(),
            )?;
            if !out.status.success() {
                return Err("openssl passwd failed".into());
            }
            let hash = String::from_utf8_lossy(&out.stdout);
            let htpasswd = d.join("htpasswd");
            io(
                "write",
                &htpasswd,
                fs::write(&htpasswd, format!("{user}:{}", hash.trim())),
            )?;
            auth_conf = format!(
                "auth_basic cache; auth_basic_user_file {}/htpasswd;",
                d.display()
            );
        }
        for _attempt in 0..20 {
            let port = io(
                "bind a port on",
                Path::new("127.0.0.1"),
                TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()),
            )?
            .port();
            let ssl = if https { " ssl" } else { "" };
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\n\
                 pid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n\
                   client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
                   fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
                   scgi_temp_path {d}/tmp/scgi;\n\
                   server {{\n    listen 127.0.0.1:{port}{ssl};\n    {server_tls}\n\
                     root {d}/root;\n    client_max_body_size 0;\n\
                     location / {{\n      dav_methods PUT DELETE;\n      create_full_put_path on;\n\
                       dav_access user:rw group:r all:r;\n      {auth_conf}\n    }}\n  }}\n}}\n",
                d = d.display()
            );
            let conf_path = d.join("nginx.conf");
            io("write", &conf_path, fs::write(&conf_path, conf))?;
            let mut child = io(
                "start",
                Path::new(NGINX),
                Command::new(NGINX)
                    .arg("-p")
                    .arg(&d)
                    .arg("-c")
                    .arg(&conf_path)
                    .arg("-e")
                    .arg(d.join("error.log"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn(),
            )?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: most likely the port was taken meanwhile; retry
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(Nginx {
                        child: Some(child),
                        dir,
                        port,
                        https,
                    });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(format!(
            "nginx did not start: {}",
            fs::read_to_string(d.join("error.log")).unwrap_or_default()
        ))
    }

    /// `http(s)://127.0.0.1:PORT/cache`.
    pub fn url(&self) -> String {
        self.url_with("")
    }

    /// [`Nginx::url`] with `userinfo` (`user:password@`) before the host.
    pub fn url_with(&self, userinfo: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{userinfo}127.0.0.1:{}/cache", self.port)
    }

    /// Where nginx keeps `/cache/{area}/{hex}`.
    pub fn file(&self, area: &str, hex: &str) -> PathBuf {
        self.area(area).join(hex)
    }

    /// Where nginx keeps `/cache/{area}/…`.
    pub fn area(&self, area: &str) -> PathBuf {
        self.dir.0.join("root/cache").join(area)
    }

    /// The private CA's certificate (https).
    pub fn ca(&self) -> PathBuf {
        self.dir.0.join("ca.pem")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(d: &Path) -> Result<(), String> {
    let o = |args: &[&str]| run(Command::new("openssl").current_dir(d).args(args));
    o(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=redo test CA",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ])?;
    o(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ])?;
    let ext = d.join("ext.cnf");
    io(
        "write",
        &ext,
        fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        ),
    )?;
    o(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ])
}
